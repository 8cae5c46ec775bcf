"""Lazy output layers: a 200-frame dask stack pair fuses only the frames viewed.

Most tests use napari's ``ViewerModel`` (the viewer without Qt: layers, dims and slicing, which
is where data are read), so they run headless; one test repeats the slider test in a real
viewer (needs a display, e.g. ``xvfb-run``).
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from napari_resfuse._napari.lazy_layers import (
    fuse_layers_lazy,
    is_lazy_data,
    lazy_of,
    save_worker,
)
from napari_resfuse.lazy import fuse_lazy

from ..conftest import textured_pair

FAST = {"weights": "random", "layers": ("conv1", "conv2_1")}
N_FRAMES = 200


@pytest.fixture(scope="module")
def frames():
    """200 uint8 frames of 64 x 96, cycling through five distinct pairs."""
    pairs = [textured_pair(seed=s) for s in range(5)]
    cycle = np.arange(N_FRAMES) % 5
    return np.stack([p[0] for p in pairs])[cycle], np.stack([p[1] for p in pairs])[cycle]


def _add_inputs(viewer, frames):
    ir, vis = frames
    viewer.add_image(da.from_array(ir, chunks=(10, 64, 96)), name="ir", contrast_limits=(0, 255))
    viewer.add_image(da.from_array(vis, chunks=(10, 64, 96)), name="vis", contrast_limits=(0, 255))


def _move_slider(viewer, lazy, steps):
    """Move the time slider through ``steps``; returns the blocks fused meanwhile."""
    fused = []
    lazy.on_call = fused.append
    time_axis = viewer.dims.ndim - 3  # (level, time, y, x) once the weights layer is in
    for t in steps:
        viewer.dims.set_current_step(time_axis, t)
    lazy.on_call = None
    return [block[0] for block in fused]


def test_slider_fuses_only_viewed_frames(frames):
    from napari.components import ViewerModel

    viewer = ViewerModel()
    _add_inputs(viewer, frames)
    layers = fuse_layers_lazy(
        viewer, "ir", "vis", outputs=("fused", "detail", "weights", "winning level"), **FAST
    )
    names = [layer.name for layer in viewer.layers]
    assert names[2:] == [
        "fused [ir + vis]",
        "detail [ir]",
        "detail [vis]",
        "weights [ir]",
        "weights [vis]",
        "winning level [ir]",
        "winning level [vis]",
    ]
    lazy = lazy_of(layers[0])
    assert all(lazy_of(layer) is lazy for layer in layers)
    assert layers[0].data.shape == (N_FRAMES, 64, 96)
    assert layers[3].data.shape == (3, N_FRAMES, 64, 96)  # two levels and their max
    # Adding seven layers fused the one frame on screen, once.
    first = viewer.dims.current_step[1]
    assert lazy.calls == 1
    viewed = [10, 50, 120, 121, 199]
    assert _move_slider(viewer, lazy, viewed) == viewed
    assert lazy.calls == 1 + len(viewed)
    # What is shown is the fused frame.
    ir, vis = frames
    from napari_resfuse import fuse

    shown = np.asarray(layers[0]._slice.image.raw)
    np.testing.assert_allclose(shown, fuse(ir[199], vis[199], **FAST).fused, atol=1e-6)
    # Back to a recent frame: the cache answers (napari's own dask cache may too).
    assert _move_slider(viewer, lazy, [120, first]) == []
    assert lazy.calls == 1 + len(viewed)


def test_rerun_updates_the_lazy_layers_in_place(frames):
    from napari.components import ViewerModel

    viewer = ViewerModel()
    _add_inputs(viewer, frames)
    first = fuse_layers_lazy(viewer, "ir", "vis", **FAST)
    again = fuse_layers_lazy(viewer, "ir", "vis", kernel_size=15, **FAST)
    assert [a is b for a, b in zip(first, again, strict=True)] == [True, True, True]
    assert len(viewer.layers) == 5
    assert lazy_of(again[0]).options.kernel_size == 15
    assert all(layer.visible for layer in again)


def test_non_uint8_layers_use_their_contrast_limits(frames):
    from napari.components import ViewerModel

    ir, vis = (f[:4].astype(np.float32) * 4.0 for f in frames)
    viewer = ViewerModel()
    viewer.add_image(da.from_array(ir, chunks=(1, 64, 96)), name="ir", contrast_limits=(0, 1020))
    viewer.add_image(da.from_array(vis, chunks=(1, 64, 96)), name="vis", contrast_limits=(0, 800))
    (layer,) = fuse_layers_lazy(viewer, "ir", "vis", outputs=(), **FAST)
    assert lazy_of(layer).options.value_range == ((0.0, 1020.0), (0.0, 800.0))


def test_is_lazy_data():
    small = np.zeros((4, 32, 32), np.uint8)
    assert not is_lazy_data(small)
    assert is_lazy_data(small, limit=100)
    assert is_lazy_data(da.zeros((4, 32, 32)))


def test_save_worker_writes_and_cancels(frames, tmp_path, qtbot):
    import zarr

    ir, vis = (f[:3] for f in frames)
    lazy = fuse_lazy(ir, vis, **FAST)
    worker = save_worker(lazy, tmp_path / "out.zarr", outputs=("fused", "weights"))
    progress = []
    worker.yielded.connect(progress.append)
    with qtbot.waitSignal(worker.returned, timeout=60_000) as returned:
        worker.start()
    assert returned.args == [tmp_path / "out.zarr"]
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
    group = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")
    np.testing.assert_array_equal(group["fused"][:], lazy.fused.compute())

    cancelled = save_worker(lazy, tmp_path / "cancelled.zarr")
    cancelled.yielded.connect(lambda _: cancelled.quit())
    with qtbot.waitSignal(cancelled.finished, timeout=60_000):
        cancelled.start()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]  # nothing partial


def test_slider_in_a_real_viewer(viewer, frames):
    """The same count in the Qt viewer (thumbnails and the canvas read only the slice)."""
    _add_inputs(viewer, frames)
    # Another seed than the other tests: napari's dask cache is shared by the whole process.
    (layer,) = fuse_layers_lazy(viewer, "ir", "vis", outputs=(), seed=7, **FAST)
    lazy = lazy_of(layer)
    assert lazy.calls == 1
    viewed = [3, 77, 150]
    time_axis = viewer.dims.ndim - 3
    for t in viewed:
        viewer.dims.set_current_step(time_axis, t)
    assert lazy.calls == 1 + len(viewed)


def test_with_async_slicing_the_main_thread_never_fuses(viewer, frames, qtbot):
    """With napari's asynchronous slicing on, a slider move returns at once and the plane is
    fused in a slicing thread; the engine is held there until the test lets it go."""
    import threading

    from napari.settings import get_settings

    root = get_settings()
    save_on_change = root._save_on_change
    root._save_on_change = False  # not into the user's settings file
    settings = root.experimental
    previous = settings.async_
    settings.async_ = True
    try:
        _add_inputs(viewer, frames)
        (layer,) = fuse_layers_lazy(viewer, "ir", "vis", outputs=(), seed=11, **FAST)
        lazy = lazy_of(layer)
        qtbot.waitUntil(lambda: layer.loaded and lazy.calls >= 1, timeout=60_000)
        calls = lazy.calls
        entered, release, threads = threading.Event(), threading.Event(), []

        def hold(block):
            threads.append(threading.current_thread())
            entered.set()
            release.wait(60)

        lazy.on_call = hold
        viewer.dims.set_current_step(0, 33)  # returns while the plane is being fused
        assert entered.wait(60)
        assert threads[0] is not threading.main_thread()
        release.set()
        ir, vis = frames
        from napari_resfuse import fuse

        expected = fuse(ir[33], vis[33], seed=11, **FAST).fused
        qtbot.waitUntil(
            lambda: (
                layer.loaded
                and np.allclose(np.asarray(layer._slice.image.raw), expected, atol=1e-6)
            ),
            timeout=60_000,
        )
        assert lazy.calls == calls + 1
    finally:
        settings.async_ = previous
        root._save_on_change = save_on_change
