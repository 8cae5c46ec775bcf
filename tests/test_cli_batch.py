"""``resfuse batch`` end to end: threads in this process, an existing cluster by address,
stacks into zarr, and the exit codes."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

pytest.importorskip("distributed")

from napari_resfuse.cli import build_parser, main

from .conftest import textured_pair

FAST = ["--weights", "random", "--layers", "conv1,conv2_1", "-q"]


@pytest.fixture
def pairs(tmp_path):
    root = tmp_path / "pairs"
    for sub in ("IR", "VIS"):
        (root / sub).mkdir(parents=True)
    for i in range(3):
        ir, vis = textured_pair(seed=i)
        iio.imwrite(root / "IR" / f"scene{i}.png", ir)
        iio.imwrite(root / "VIS" / f"scene{i}.png", vis)
    return root


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_batch_is_a_sub_command():
    parser = build_parser()
    args = parser.parse_args(["batch", "in", "--out", "o", "--scheduler", "threads"])
    assert args.command == "batch" and args.workers is None and args.retries == 2


def test_batch_on_threads_equals_fuse_and_resumes(pairs, tmp_path, capsys):
    ref, ref_maps = tmp_path / "ref", tmp_path / "ref_maps"
    argv = ["fuse", str(pairs / "IR"), str(pairs / "VIS"), "-o", str(ref), *FAST]
    assert main([*argv, "--save-intermediates", str(ref_maps)]) == 0
    out, maps = tmp_path / "out", tmp_path / "maps"
    argv = ["batch", str(pairs), "--out", str(out), "--scheduler", "threads", "--workers", "2"]
    assert main([*argv, *FAST, "--save-intermediates", str(maps)]) == 0
    printed = capsys.readouterr().out
    assert "pairs: 3 fused, 0 skipped (already written), 0 failed" in printed
    assert _files(out) == _files(ref)
    # The maps too, bit for bit, except the JSON holding the run's timings.
    expected = {k: v for k, v in _files(ref_maps).items() if not k.endswith(".json")}
    written = _files(maps)
    assert sorted(written) == sorted(_files(ref_maps))
    assert {k: v for k, v in written.items() if not k.endswith(".json")} == expected

    assert main([*argv, *FAST, "--save-intermediates", str(maps)]) == 0
    assert "0 fused, 3 skipped" in capsys.readouterr().out
    assert main([*argv, *FAST, "--save-intermediates", str(maps), "--overwrite"]) == 0
    assert "3 fused, 0 skipped" in capsys.readouterr().out


def test_batch_on_a_scheduler_address(pairs, tmp_path, capsys):
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        argv = ["batch", str(pairs / "IR"), str(pairs / "VIS"), "-o", str(tmp_path / "out")]
        assert main([*argv, "--scheduler", address, *FAST]) == 0
    assert "pairs: 3 fused" in capsys.readouterr().out
    assert sorted(_files(tmp_path / "out")) == ["scene0.png", "scene1.png", "scene2.png"]


def test_batch_stacks_into_zarr(tmp_path, capsys):
    import zarr

    pairs = [textured_pair(seed=s) for s in range(3)]
    tifffile.imwrite(tmp_path / "ir.tif", np.stack([p[0] for p in pairs]), photometric="minisblack")
    tifffile.imwrite(
        tmp_path / "vis.tif", np.stack([p[1] for p in pairs]), photometric="minisblack"
    )
    out = tmp_path / "fused.zarr"
    argv = ["batch", str(tmp_path / "ir.tif"), str(tmp_path / "vis.tif"), "--out", str(out)]
    assert main([*argv, "--scheduler", "threads", "--workers", "1", *FAST]) == 0
    assert "frame blocks: 1 fused" in capsys.readouterr().out
    fused = zarr.open_group(str(out), mode="r")["fused"]
    assert fused.shape == (3, 64, 96) and fused.dtype == np.uint8


def test_batch_exit_codes(pairs, tmp_path, capsys):
    iio.imwrite(pairs / "IR" / "flat.png", np.zeros((64, 96), np.uint8))
    iio.imwrite(pairs / "VIS" / "flat.png", textured_pair()[1])
    argv = ["batch", str(pairs), "--out", str(tmp_path / "out"), "--scheduler", "threads"]
    assert main([*argv, "--workers", "1", *FAST]) == 1  # one pair failed
    printed = capsys.readouterr().out
    assert "3 fused, 0 skipped (already written), 1 failed" in printed
    assert "failed flat: ValueError: infrared image is constant" in printed

    assert main(["batch", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), *FAST]) == 2
    assert "does not exist" in capsys.readouterr().err
    argv = ["batch", str(pairs), "--out", str(tmp_path / "o"), "--scheduler", "udp-ish"]
    assert main([*argv, *FAST]) == 2
    assert "scheduler must be" in capsys.readouterr().err
