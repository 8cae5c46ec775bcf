"""Lazy fusion of stacks (fuse_lazy, save_lazy) and the stack readers.

Engine calls are counted with ``LazyFusion.calls`` (blocks fused in this process); results are
compared with :func:`napari_resfuse.fuse` run on the same planes.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile

from napari_resfuse import FusionCancelled, fuse
from napari_resfuse.io import from_unit_range
from napari_resfuse.lazy import OUTPUTS, fuse_lazy, fuse_planes, iter_save_lazy, save_lazy
from napari_resfuse.options import FusionOptions
from napari_resfuse.stacks import FolderStack, TiffStack, is_stack, open_stack

from .conftest import textured_pair

FAST = {"weights": "random", "layers": ("conv1", "conv2_1")}


def _stack(n, shape=(64, 96)):
    """``n`` planes cycling through 7 distinct pairs."""
    pairs = [textured_pair(shape, seed=s) for s in range(min(n, 7))]
    ir, vis = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    cycle = np.arange(n) % len(pairs)
    return ir[cycle], vis[cycle]


@pytest.fixture(scope="module")
def long_stack():
    """A 200-frame uint8 pair as dask arrays chunked 10 frames at a time."""
    ir, vis = _stack(200)
    return ir, vis, da.from_array(ir, chunks=(10, 64, 96)), da.from_array(vis, chunks=(10, 64, 96))


def test_only_viewed_frames_are_fused(long_stack):
    ir, vis, ir_d, vis_d = long_stack
    lazy = fuse_lazy(ir_d, vis_d, **FAST)
    assert lazy.fused.shape == (200, 64, 96) and lazy.numblocks == (200,)
    assert lazy.weights.shape == (2, 200, 64, 96)
    assert lazy.level_weights.shape == (2, 2, 200, 64, 96)
    assert lazy.calls == 0  # building the graph fuses nothing
    viewed = [17, 42, 199]
    frames = {t: lazy.fused[t].compute() for t in viewed}
    assert lazy.calls == len(viewed)
    # The other outputs of a viewed frame come from the same engine call (cache).
    weights_42 = lazy.weights[:, 42].compute()
    detail_17 = lazy.detail[:, 17].compute()
    assert lazy.calls == len(viewed)
    for t in viewed:
        ref = fuse(ir[t], vis[t], **FAST)
        np.testing.assert_allclose(frames[t], ref.fused, atol=1e-6)
        if t == 42:
            np.testing.assert_allclose(weights_42, ref.weights, atol=1e-6)
        if t == 17:
            np.testing.assert_allclose(detail_17, ref.detail, atol=1e-6)
    lazy.fused[100:103].compute()
    assert lazy.calls == len(viewed) + 3


def test_outputs_of_one_block_share_one_call_across_threads(long_stack):
    _, _, ir_d, vis_d = long_stack
    lazy = fuse_lazy(ir_d, vis_d, **FAST)
    dask.compute(lazy.fused[5], lazy.base[:, 5], lazy.winning_level[:, 5], scheduler="threads")
    assert lazy.calls == 1
    start = threading.Barrier(3)

    def get(name):
        start.wait()
        return lazy[name][..., 6, :, :].compute(scheduler="sync")

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(get, ["fused", "weights", "detail"]))
    assert lazy.calls == 2  # block 6 fused once for three concurrent requests
    assert results[0].shape == (64, 96) and results[1].shape == (2, 64, 96)


def test_cache_size_bounds_reuse(long_stack):
    _, _, ir_d, vis_d = long_stack
    lazy = fuse_lazy(ir_d, vis_d, cache_blocks=2, **FAST)
    for t in (0, 1, 2, 2, 0):  # 0 was evicted by 2
        lazy.fused[t].compute()
    assert lazy.calls == 4
    seen = []
    lazy.on_call = seen.append
    lazy.clear_cache()
    lazy.fused[1].compute()
    assert lazy.calls == 5 and seen == [(1,)]
    uncached = fuse_lazy(ir_d, vis_d, cache_blocks=0, **FAST)
    uncached.fused[3].compute()
    uncached.base[:, 3].compute()
    assert uncached.calls == 2


def test_whole_stack_equals_fuse_with_stack_value_range():
    """uint16 stack: the value range is the whole stack's (as fuse uses it), blocks of 3 planes,
    a constant frame inside, every output equal to fuse on the whole stack."""
    ir, vis = _stack(7)
    ir = ir.astype(np.uint16) * 200 + 1000
    vis = vis.astype(np.uint16) * 150
    ir[4] = 1000  # a constant frame: the engine refuses it alone, not inside a stack
    lazy = fuse_lazy(ir, vis, planes_per_block=3, **FAST)
    assert lazy.numblocks == (3,)
    assert lazy.options.value_range == (
        (float(ir.min()), float(ir.max())),
        (float(vis.min()), float(vis.max())),
    )
    ref = fuse(ir, vis, **FAST)
    computed = dask.compute(*(lazy[name] for name in OUTPUTS))
    assert lazy.calls == 3
    for name, value in zip(OUTPUTS, computed, strict=True):
        np.testing.assert_allclose(value, getattr(ref, name), atol=1e-5, err_msg=name)
    assert lazy.winning_level.dtype == np.uint8


def test_leading_axes_and_rgb_visible():
    ir, vis = _stack(6)
    rgb = np.stack([vis, vis[::-1], 255 - vis], axis=-1)
    ir4, rgb4 = ir.reshape(2, 3, 64, 96), rgb.reshape(2, 3, 64, 96, 3)
    lazy = fuse_lazy(ir4, rgb4, planes_per_block=2, **FAST)
    assert lazy.fused.shape == (2, 3, 64, 96, 3)
    assert lazy.base.shape == (2, 2, 3, 64, 96)
    assert lazy.numblocks == (2, 2)  # 3 planes of the last axis in blocks of 2
    ref = fuse(ir4, rgb4, **FAST)
    np.testing.assert_allclose(lazy.fused.compute(), ref.fused, atol=1e-5)
    np.testing.assert_allclose(lazy.weights[:, 1, 2].compute(), ref.weights[:, 1, 2], atol=1e-5)


def test_fuse_planes_pads_a_constant_block_only():
    ir, vis = _stack(2)
    opts = FusionOptions(value_range=(0, 255), **FAST)
    black = np.zeros_like(ir[:1])
    out = fuse_planes(black, vis[:1], opts)
    # The same plane fused next to a non-constant one (planes are independent).
    ref = fuse(np.concatenate([black, ir[1:]]), vis, opts)
    np.testing.assert_allclose(out["fused"], ref.fused[:1], atol=1e-6)
    assert out["weights"].shape == (2, 1, 64, 96)
    with pytest.raises(ValueError, match="value_range must be fixed"):
        fuse_planes(ir, vis, FusionOptions(**FAST))


def test_bad_inputs_are_clear_errors():
    ir, vis = _stack(3)
    with pytest.raises(ValueError, match=r"differ in shape: infrared \(3, 64, 96\)"):
        fuse_lazy(ir, vis[:2], **FAST)
    with pytest.raises(ValueError, match="too small"):
        fuse_lazy(ir[:, :20], vis[:, :20], **FAST)
    flat = np.full(ir.shape, 3.0, np.float32)
    with pytest.raises(ValueError, match="infrared stack is constant"):
        fuse_lazy(flat, vis.astype(np.float32), **FAST)
    with pytest.raises(ValueError, match="planes_per_block"):
        fuse_lazy(ir, vis, planes_per_block=0, **FAST)
    with pytest.raises(ValueError, match="RGBA"):
        fuse_lazy(ir, np.zeros((3, 64, 96, 4), np.uint8), **FAST)


def test_save_lazy_zarr_tiff_progress_cancel(tmp_path):
    import zarr

    ir, vis = _stack(5)
    lazy = fuse_lazy(ir, vis, planes_per_block=2, **FAST)
    seen = []
    path = save_lazy(
        lazy,
        tmp_path / "out.zarr",
        outputs=("fused", "weights"),
        progress=lambda *a: seen.append(a),
    )
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    group = zarr.open_group(str(path), mode="r")
    np.testing.assert_array_equal(group["fused"][:], lazy.fused.compute())
    np.testing.assert_array_equal(group["weights"][:], lazy.weights.compute())
    assert group["fused"].chunks == (2, 64, 96)
    assert group.attrs["napari_resfuse"]["value_range"] == [[0.0, 255.0], [0.0, 255.0]]

    tif = save_lazy(lazy, tmp_path / "out.tif", dtype=np.uint8)
    np.testing.assert_array_equal(
        tifffile.imread(tif), from_unit_range(lazy.fused.compute(), np.uint8)
    )
    with pytest.raises(FileExistsError):
        save_lazy(lazy, tif)
    with pytest.raises(ValueError, match="one output"):
        save_lazy(lazy, tmp_path / "two.tif", outputs=("fused", "base"))

    calls = []
    with pytest.raises(FusionCancelled):
        save_lazy(lazy, tmp_path / "cancelled.zarr", cancel=lambda: len(calls) >= 2,
                  progress=lambda *a: calls.append(a))  # fmt: skip
    assert calls == [(0, 3), (1, 3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif", "out.zarr"]  # no partial
    # The generator form (for a napari thread worker): closing it is cancelling.
    runner = iter_save_lazy(lazy, tmp_path / "closed.zarr")
    assert next(runner) == (0, 3) and next(runner) == (1, 3)
    assert any(p.name.startswith(".closed.partial-") for p in tmp_path.iterdir())
    runner.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif", "out.zarr"]


def test_stack_readers(tmp_path):
    import zarr

    stack = np.random.default_rng(0).integers(0, 4000, (4, 2, 40, 50), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "s.tif", stack)
    assert is_stack(tmp_path / "s.tif")
    reader = TiffStack(tmp_path / "s.tif")
    assert reader.shape == stack.shape and reader.frame_ndim == 2
    np.testing.assert_array_equal(reader[2, 1], stack[2, 1])
    np.testing.assert_array_equal(reader[1:3, :, 5:9], stack[1:3, :, 5:9])
    lazy = open_stack(tmp_path / "s.tif", frames_per_chunk=2)
    assert lazy.chunks == ((1, 1, 1, 1), (2,), (40,), (50,))
    np.testing.assert_array_equal(lazy.compute(), stack)

    rgb = np.random.default_rng(1).integers(0, 255, (3, 40, 50, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb)
    np.testing.assert_array_equal(open_stack(tmp_path / "rgb.tif").compute(), rgb)

    zarr.open_group(str(tmp_path / "g.zarr"), mode="w").create_array(
        "fused", data=stack[:, 0]
    )  # a group: its "fused" array
    assert is_stack(tmp_path / "g.zarr")
    np.testing.assert_array_equal(open_stack(tmp_path / "g.zarr").compute(), stack[:, 0])

    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(3):
        tifffile.imwrite(folder / f"f{t}.tif", stack[t, 0])
    np.testing.assert_array_equal(FolderStack(folder)[::2], stack[[0, 2], 0])
    # One page of planar samples (how tifffile stores a (3, H, W) array): read as 3 planes,
    # as the engine would fuse the array read whole.
    planes = stack[:3, 0].astype(np.uint8)
    tifffile.imwrite(tmp_path / "planar.tif", planes, planarconfig="separate", photometric="rgb")
    assert is_stack(tmp_path / "planar.tif")
    np.testing.assert_array_equal(open_stack(tmp_path / "planar.tif")[1:].compute(), planes[1:])
    tifffile.imwrite(tmp_path / "single.tif", stack[0, 0])
    assert not is_stack(tmp_path / "single.tif")
    with pytest.raises(FileNotFoundError):
        open_stack(tmp_path / "missing.tif")


def test_video_reader_seeks_to_exact_frames(tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    from napari_resfuse.stacks import VideoStack

    n, h, w = 24, 64, 96
    writer = imageio_ffmpeg.write_frames(
        str(tmp_path / "v.mp4"), (w, h), fps=10, macro_block_size=16,
        output_params=["-g", "5"],  # a keyframe every 5 frames, so reads really seek
    )  # fmt: skip
    writer.send(None)
    for t in range(n):
        frame = np.full((h, w, 3), 10 * t, np.uint8)
        frame[8:24, 2 * t : 2 * t + 16] = 255
        writer.send(frame)
    writer.close()
    video = VideoStack(tmp_path / "v.mp4")
    assert video.shape == (n, h, w, 3)
    sequential = video[:]
    for start in (1, 4, 5, 11, 20):
        np.testing.assert_array_equal(video[start : start + 3], sequential[start : start + 3])
    np.testing.assert_array_equal(video[[3, 9, 10]], sequential[[3, 9, 10]])
    # Frame t is the t-th frame written (brightness 10 t, up to coding loss).
    assert np.abs(sequential[:, 40:, 60:, 0].mean(axis=(1, 2)) - 10 * np.arange(n)).max() < 3
