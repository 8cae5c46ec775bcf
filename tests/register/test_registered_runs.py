"""One registration (a fixed rig) for a whole run: fuse_lazy, batch (pairs and stacks) and
compare give what ``fuse(..., registration=reg)`` gives on the same pair or plane; a
registration file for other shapes is refused before any work, in one line (exit code 2)."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_resfuse import fuse
from napari_resfuse.cli import main
from napari_resfuse.io import from_unit_range, read_image
from napari_resfuse.lazy import fuse_lazy
from napari_resfuse.register import Registration, RegistrationError
from tests.conftest import textured_pair

LAYERS = ("conv1", "conv2_1")
FAST = {"weights": "random", "device": "cpu", "layers": LAYERS}
CLI_FAST = ["--weights", "random", "--layers", ",".join(LAYERS), "-q"]


def rig(ir_shape=(74, 116), vis_shape=(64, 96), dr=10, dc=30):
    """Visible pixel (r, c) sees infrared pixel (r + dr, c + dc)."""
    return Registration(
        [[1, 0, dr], [0, 1, dc], [0, 0, 1]],
        model="translation",
        infrared_shape=ir_shape,
        visible_shape=vis_shape,
    )


def unaligned_pair(seed):
    """A (74, 116) infrared image and a (64, 96) visible one, related by :func:`rig`."""
    ir, vis = textured_pair(shape=(64, 96), seed=seed)
    big = np.pad(ir, ((10, 0), (30, 0)), mode="reflect")[:, :116]  # sees visible columns < 86
    return np.ascontiguousarray(big), vis


@pytest.fixture(scope="module")
def stacks():
    pairs = [unaligned_pair(seed) for seed in range(3)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


@pytest.fixture
def rig_file(tmp_path):
    return rig().save(tmp_path / "rig.json")


@pytest.fixture
def other_rig_file(tmp_path):
    """A registration for images of other shapes than those of the pairs and stacks."""
    return rig(ir_shape=(80, 120), vis_shape=(64, 96)).save(tmp_path / "other.json")


# --- fuse_lazy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grid", "crop"), [("visible", "overlap"), ("visible", None), ("infrared", "overlap")]
)
def test_lazy_registered_stack_equals_fuse_plane_by_plane(stacks, grid, crop):
    ir, vis = stacks
    reg = rig()
    expected = fuse(ir, vis, registration=reg, grid=grid, crop=crop, **FAST)
    lazy = fuse_lazy(ir, vis, registration=reg, grid=grid, crop=crop, **FAST)
    assert lazy.calls == 0  # nothing fused yet
    assert lazy.fused.shape == expected.fused.shape
    plane = lazy.fused[1].compute()
    assert lazy.calls == 1  # one plane, one engine call
    np.testing.assert_allclose(plane, expected.fused[1], atol=1e-5)
    np.testing.assert_allclose(lazy.weights.compute(), expected.weights, atol=1e-5)
    assert lazy.params["registration"] == expected.params["registration"]
    if crop is None:
        np.testing.assert_array_equal(lazy.valid, expected.valid)
    else:
        assert lazy.valid is None


def test_lazy_takes_a_registration_file(stacks, rig_file):
    ir, vis = stacks
    lazy = fuse_lazy(ir, vis, registration=rig_file, **FAST)
    expected = fuse(ir[2], vis[2], registration=rig(), value_range=lazy.options.value_range, **FAST)
    np.testing.assert_allclose(lazy.fused[2].compute(), expected.fused, atol=1e-5)


def test_lazy_refuses_a_registration_for_other_shapes_before_reading(stacks, other_rig_file):
    ir, vis = stacks
    before = (ir.copy(), vis.copy())
    with pytest.raises(RegistrationError, match="infrared image of 80 x 120 px"):
        fuse_lazy(ir, vis, registration=other_rig_file, **FAST)
    np.testing.assert_array_equal(ir, before[0])
    np.testing.assert_array_equal(vis, before[1])


def test_lazy_refuses_stacks_of_different_lengths(stacks):
    ir, vis = stacks
    with pytest.raises(ValueError, match="different stack axes"):
        fuse_lazy(ir[:2], vis, registration=rig(), **FAST)


# --- batch ---------------------------------------------------------------------------------


@pytest.fixture
def pairs(tmp_path):
    root = tmp_path / "pairs"
    for sub in ("IR", "VIS"):
        (root / sub).mkdir(parents=True)
    for i in range(2):
        ir, vis = unaligned_pair(seed=i)
        iio.imwrite(root / "IR" / f"scene{i}.png", ir)
        iio.imwrite(root / "VIS" / f"scene{i}.png", vis)
    return root


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_batch_pairs_with_a_rig_equal_fuse_with_it(pairs, rig_file, tmp_path, capsys):
    pytest.importorskip("distributed")
    ref = tmp_path / "ref"
    argv = ["fuse", str(pairs / "IR"), str(pairs / "VIS"), "-o", str(ref), *CLI_FAST]
    assert main([*argv, "--registration", str(rig_file)]) == 0
    out = tmp_path / "out"
    argv = ["batch", str(pairs), "--out", str(out), "--scheduler", "threads", "--workers", "1"]
    assert main([*argv, *CLI_FAST, "--registration", str(rig_file)]) == 0
    assert "pairs: 2 fused, 0 skipped" in capsys.readouterr().out
    assert _files(out) == _files(ref)
    assert read_image(out / "scene0.png").shape == (64, 86)  # cropped to the overlap
    # The rig is part of what a later run compares: without it, the pairs are fused again.
    assert main([*argv, *CLI_FAST, "--registration", str(rig_file)]) == 0
    assert "0 fused, 2 skipped" in capsys.readouterr().out
    assert main([*argv, *CLI_FAST, "--registration", str(rig_file), "--crop", "none"]) == 0
    assert "2 fused, 0 skipped" in capsys.readouterr().out
    assert read_image(out / "scene0.png").shape == (64, 96)


def test_batch_stacks_with_a_rig_equal_fuse_with_it(stacks, rig_file, tmp_path, capsys):
    pytest.importorskip("distributed")
    import zarr

    ir, vis = stacks
    tifffile.imwrite(tmp_path / "ir.tif", ir, photometric="minisblack")
    tifffile.imwrite(tmp_path / "vis.tif", vis, photometric="minisblack")
    store = tmp_path / "fused.zarr"
    argv = ["batch", str(tmp_path / "ir.tif"), str(tmp_path / "vis.tif"), "--out", str(store)]
    argv += ["--scheduler", "threads", "--workers", "1", "--frames-per-task", "2"]
    assert main([*argv, *CLI_FAST, "--registration", str(rig_file)]) == 0
    assert "frame blocks: 2 fused" in capsys.readouterr().out
    written = zarr.open_array(str(store / "fused"), mode="r")[...]
    expected = fuse(ir, vis, registration=rig(), **FAST)
    assert written.shape == expected.fused.shape == (3, 64, 86)
    diff = np.abs(written.astype(int) - from_unit_range(expected.fused, np.uint8).astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99  # float noise of other batch sizes


@pytest.mark.parametrize("mode", ["pairs", "stacks"])
def test_batch_refuses_a_rig_for_other_shapes_before_any_work(
    mode, pairs, stacks, other_rig_file, tmp_path, capsys
):
    pytest.importorskip("distributed")
    if mode == "pairs":
        inputs = [str(pairs)]
        out = tmp_path / "out"
    else:
        tifffile.imwrite(tmp_path / "ir.tif", stacks[0], photometric="minisblack")
        tifffile.imwrite(tmp_path / "vis.tif", stacks[1], photometric="minisblack")
        inputs = [str(tmp_path / "ir.tif"), str(tmp_path / "vis.tif")]
        out = tmp_path / "fused.zarr"
    argv = ["batch", *inputs, "--out", str(out), "--scheduler", "threads", *CLI_FAST]
    assert main([*argv, "--registration", str(other_rig_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("resfuse batch: error:") and "80 x 120 px" in err
    assert not out.exists()


def test_batch_refuses_a_missing_registration_file(pairs, tmp_path, capsys):
    pytest.importorskip("distributed")
    argv = ["batch", str(pairs), "--out", str(tmp_path / "out"), *CLI_FAST]
    assert main([*argv, "--registration", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.json" in err and "does not exist" in err


# --- compare -------------------------------------------------------------------------------


def test_compare_with_a_rig_fuses_what_fuse_fuses(pairs, rig_file, tmp_path):
    from napari_resfuse.compare import compare

    report = compare(
        pairs, tmp_path / "report", ["resfuse", "average"], weights="random",
        device="cpu", registration=rig_file,
    )  # fmt: skip
    assert report.ok, report.failed
    for i in range(2):
        ir, vis = unaligned_pair(seed=i)
        expected = from_unit_range(
            fuse(ir, vis, registration=rig(), weights="random", device="cpu").fused, np.uint8
        )
        written = read_image(report.fused[(f"scene{i}", "resfuse")])
        assert written.shape == expected.shape == (64, 86)
        diff = np.abs(written.astype(int) - expected.astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99  # float32 vs float64 scaling
        # Every method gets the same aligned pair: the average is of the aligned crops.
        average = read_image(report.fused[(f"scene{i}", "average")]).astype(float)
        aligned_ir, aligned_vis = ir[10:74, 30:116], vis[:, :86]
        mean = (aligned_ir.astype(float) + aligned_vis) / 2
        assert np.abs(average - mean).max() <= 1


def test_compare_cli_takes_a_rig_and_refuses_one_for_other_shapes(
    pairs, rig_file, other_rig_file, tmp_path, capsys
):
    out = tmp_path / "report"
    argv = ["compare", str(pairs), "--out", str(out), "--methods", "average", "--quiet"]
    assert main([*argv, "--registration", str(rig_file)]) == 0
    assert read_image(out / "fused" / "average" / "scene0.png").shape == (64, 86)
    capsys.readouterr()
    other = tmp_path / "other_report"
    argv[3] = str(other)
    assert main([*argv, "--registration", str(other_rig_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("resfuse compare: error: pair 'scene0':") and "80 x 120 px" in err
    assert not other.exists()
