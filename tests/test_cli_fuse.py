"""`resfuse fuse` end to end on files on disk (seeded random weights)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_resfuse import fuse
from napari_resfuse.cli import main
from napari_resfuse.io import read_image, write_image

from .conftest import textured_pair

FAST = ["--weights", "random", "--device", "cpu", "--layers", "conv1,conv2_1,conv3_1"]


@pytest.fixture
def pair_files(tmp_path):
    ir, vis = textured_pair()
    return ir, vis, write_image(tmp_path / "ir.png", ir), write_image(tmp_path / "vis.png", vis)


def test_fuse_pair_writes_input_bit_depth_and_intermediates(tmp_path, pair_files, capsys):
    ir, vis, ir_path, vis_path = pair_files
    out = tmp_path / "out" / "fused.png"
    inter = tmp_path / "maps"
    code = main(
        [
            "fuse",
            str(ir_path),
            str(vis_path),
            "-o",
            str(out),
            "--save-intermediates",
            str(inter),
            *FAST,
        ]
    )
    assert code == 0
    fused = read_image(out)
    assert fused.dtype == np.uint8 and fused.shape == ir.shape
    expected = fuse(ir, vis, weights="random", layers=("conv1", "conv2_1", "conv3_1"))
    assert np.abs(fused.astype(int) - np.round(expected.fused * 255)).max() <= 1
    detail = read_image(inter / "fused_detail_ir.tif")
    np.testing.assert_allclose(detail, expected.detail[0], atol=1e-6)
    assert read_image(inter / "fused_weights_vis_conv3_1.tif").shape == ir.shape
    params = json.loads((inter / "fused_params.json").read_text())
    assert params["params"]["pretrained"] is False
    assert "random weights" in capsys.readouterr().err


def test_fuse_folders_matched_by_name(tmp_path):
    for d in ("ir", "vis"):
        (tmp_path / d).mkdir()
    for s in range(2):
        ir, vis = textured_pair(seed=s)
        write_image(tmp_path / "ir" / f"scene{s}.png", ir)
        write_image(tmp_path / "vis" / f"scene{s}.png", vis.astype(np.uint16) * 200)
    code = main(
        [
            "fuse",
            str(tmp_path / "ir"),
            str(tmp_path / "vis"),
            "-o",
            str(tmp_path / "out"),
            "-q",
            *FAST,
        ]
    )
    assert code == 0
    outs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outs == ["scene0.png", "scene1.png"]
    assert read_image(tmp_path / "out" / "scene0.png").dtype == np.uint16


def test_fuse_tiff_stack(tmp_path):
    pairs = [textured_pair(seed=s) for s in range(3)]
    ir = np.stack([p[0] for p in pairs]).astype(np.float32)
    vis = np.stack([p[1] for p in pairs]).astype(np.float32)
    write_image(tmp_path / "ir.tif", ir)
    write_image(tmp_path / "vis.tif", vis)
    assert (
        main(
            [
                "fuse",
                str(tmp_path / "ir.tif"),
                str(tmp_path / "vis.tif"),
                "-o",
                str(tmp_path / "f.tif"),
                "--batch-size",
                "2",
                *FAST,
            ]
        )
        == 0
    )
    out = read_image(tmp_path / "f.tif")
    assert out.shape == (3, 64, 96) and out.dtype == np.float32


def test_user_errors_are_one_line(tmp_path, pair_files, capsys):
    _, _, ir_path, _ = pair_files
    code = main(
        ["fuse", str(ir_path), str(tmp_path / "nope.png"), "-o", str(tmp_path / "o.png"), *FAST]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "nope.png" in err and "Traceback" not in err
    small = write_image(tmp_path / "small.png", np.arange(400, dtype=np.uint8).reshape(20, 20))
    assert main(["fuse", str(small), str(small), "-o", str(tmp_path / "o.png"), *FAST]) == 2
    assert "at least 32 px" in capsys.readouterr().err


def test_console_script_and_module_run():
    script = Path(sys.executable).parent / "resfuse"
    for command in ([str(script)], [sys.executable, "-m", "napari_resfuse.cli"]):
        out = subprocess.run(
            [*command, "fuse", "--help"], capture_output=True, text=True, check=True
        )
        assert "--save-intermediates" in out.stdout and "--weights" in out.stdout
