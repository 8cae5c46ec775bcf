"""`resfuse register` and `resfuse fuse --registration` end to end on files on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_resfuse import fuse
from napari_resfuse.cli import main
from napari_resfuse.io import read_image, write_image
from napari_resfuse.register import Registration

from .conftest import textured_pair

FAST = ["--weights", "random", "--device", "cpu", "--layers", "conv1,conv2_1,conv3_1"]


@pytest.fixture
def unaligned_files(tmp_path):
    """A 64 x 96 visible image and an infrared image of a shifted, larger field of view."""
    ir, vis = textured_pair()
    big_ir = np.pad(ir, ((8, 8), (12, 12)), mode="reflect")  # (80, 120)
    return (
        big_ir,
        vis,
        write_image(tmp_path / "ir.png", big_ir),
        write_image(tmp_path / "vis.png", vis),
    )


def _write_landmarks(path, ir_points, vis_points, header=True):
    lines = ["infrared_row,infrared_col,visible_row,visible_col"] if header else []
    lines += [f"{a},{b},{c},{d}" for (a, b), (c, d) in zip(ir_points, vis_points, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_register_from_landmarks_writes_the_file_and_a_preview(tmp_path, unaligned_files, capsys):
    _, vis, ir_path, vis_path = unaligned_files
    vis_points = np.array([[5.0, 5.0], [5.0, 90.0], [60.0, 10.0], [50.0, 70.0]])
    csv = _write_landmarks(tmp_path / "points.csv", vis_points + np.array([8, 12]), vis_points)
    out = tmp_path / "rig.json"
    preview = tmp_path / "check.png"
    code = main(
        [
            "register",
            str(ir_path),
            str(vis_path),
            "-o",
            str(out),
            "--model",
            "translation",
            "--landmarks",
            str(csv),
            "--preview",
            str(preview),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "RMS residual: 0.000 visible px over 4 pairs" in printed
    assert "overlap: 100.0 % of the visible frame" in printed
    reg = Registration.load(out)
    np.testing.assert_allclose(reg.matrix, [[1, 0, 8], [0, 1, 12], [0, 0, 1]], atol=1e-12)
    assert reg.infrared_shape == (80, 120) and reg.visible_shape == (64, 96)
    assert json.loads(out.read_text())["landmarks"]["visible"][0] == [5.0, 5.0]
    picture = read_image(preview)
    assert picture.shape == vis.shape and picture.dtype == np.uint8


def test_blend_preview_is_rgb(tmp_path, unaligned_files):
    _, vis, ir_path, vis_path = unaligned_files
    pts = np.array([[5.0, 5.0], [5.0, 90.0], [60.0, 10.0]])
    csv = _write_landmarks(tmp_path / "p.csv", pts + np.array([8, 12]), pts, header=False)
    preview = tmp_path / "blend.png"
    args = ["register", str(ir_path), str(vis_path), "-o", str(tmp_path / "r.json")]
    assert (
        main(
            [*args, "--landmarks", str(csv), "--preview", str(preview), "--preview-style", "blend"]
        )
        == 0
    )
    assert read_image(preview).shape == (*vis.shape, 3)


def test_fuse_with_a_registration_file_matches_the_api(tmp_path, unaligned_files, capsys):
    ir, vis, ir_path, vis_path = unaligned_files
    rig = Registration(
        [[1, 0, 8], [0, 1, 30], [0, 0, 1]],
        model="translation",
        infrared_shape=ir.shape,
        visible_shape=vis.shape,
    ).save(tmp_path / "rig.json")
    out = tmp_path / "fused.png"
    code = main(
        ["fuse", str(ir_path), str(vis_path), "-o", str(out), "--registration", str(rig), *FAST]
    )
    assert code == 0
    assert "cropped to 64 x 90 px at row 0, column 0" in capsys.readouterr().out
    expected = fuse(
        ir,
        vis,
        registration=rig,
        weights="random",
        device="cpu",
        layers=("conv1", "conv2_1", "conv3_1"),
    )
    written = read_image(out)
    assert written.shape == (64, 90)
    np.testing.assert_array_equal(written, np.round(expected.fused * 255).astype(np.uint8))
    whole = tmp_path / "whole.png"
    args = ["fuse", str(ir_path), str(vis_path), "-o", str(whole), "--registration", str(rig)]
    assert main([*args, "--crop", "none", "--grid", "infrared", *FAST]) == 0
    assert read_image(whole).shape == ir.shape


def test_errors_are_one_line(tmp_path, unaligned_files, capsys):
    _, vis, ir_path, vis_path = unaligned_files
    rig = Registration(np.eye(3), infrared_shape=(10, 20), visible_shape=vis.shape)
    rig_path = rig.save(tmp_path / "other.json")
    code = main(
        [
            "fuse",
            str(ir_path),
            str(vis_path),
            "-o",
            str(tmp_path / "f.png"),
            "--registration",
            str(rig_path),
            *FAST,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "error: this registration is for an infrared image of 10 x 20 px" in err
    assert "not infrared 80 x 120" in err

    bad = tmp_path / "bad.csv"
    bad.write_text("infrared_row,infrared_col,visible_row,visible_col\n1,2,3,4\n1,2,3\n")
    code = main(
        [
            "register",
            str(ir_path),
            str(vis_path),
            "-o",
            str(tmp_path / "r.json"),
            "--landmarks",
            str(bad),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "bad.csv', line 3: expected 4 numbers" in err

    two = _write_landmarks(tmp_path / "two.csv", [[0, 0], [5, 5]], [[0, 0], [5, 5]])
    code = main(
        [
            "register",
            str(ir_path),
            str(vis_path),
            "-o",
            str(tmp_path / "r.json"),
            "--landmarks",
            str(two),
        ]
    )
    assert (
        code == 2
        and "the affine model needs at least 3 point pairs, got 2" in capsys.readouterr().err
    )

    code = main(["register", str(ir_path), str(vis_path), "-o", str(tmp_path / "r.txt")])
    assert code == 2 and "must be a .json file" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


@pytest.fixture
def inverted_crop_files(tmp_path):
    """Visible noise texture and an inverted-contrast infrared crop of it: visible (r, c) sees
    infrared (r - 20, c - 30)."""
    from scipy import ndimage

    noise = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((200, 240)), 3)
    vis = ((noise - noise.min()) / np.ptp(noise) * 255).astype(np.uint8)
    ir = (255 - vis[20:170, 30:220]).copy()
    return write_image(tmp_path / "ir.png", ir), write_image(tmp_path / "vis.png", vis)


def test_automatic_register_and_fuse_auto(tmp_path, inverted_crop_files, capsys):
    ir_path, vis_path = inverted_crop_files
    out = tmp_path / "rig.json"
    assert (
        main(["register", str(ir_path), str(vis_path), "-o", str(out), "--model", "similarity"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "score:" in printed and "overlap:" in printed
    assert "RMS residual" not in printed
    reg = Registration.load(out)
    assert reg.method == "auto" and reg.model == "similarity"
    np.testing.assert_allclose(reg.matrix, [[1, 0, -20], [0, 1, -30], [0, 0, 1]], atol=0.3)
    fused = tmp_path / "fused.png"
    args = ["fuse", str(ir_path), str(vis_path), "-o", str(fused), "--registration", "auto"]
    assert main([*args, *FAST]) == 0
    assert "aligned (affine, auto)" in capsys.readouterr().out
    height, width = read_image(fused).shape
    assert abs(height - 150) <= 1 and abs(width - 190) <= 1  # the infrared frame, cropped
