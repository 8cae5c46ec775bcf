"""Lazy output layers: a 200-frame dask stack pair fuses only the frames viewed.

The first tests use napari's ``ViewerModel`` (the viewer without Qt: layers, dims and slicing,
which is where data are read) with ``background=False``: slicing computes in the calling
thread, so engine calls can be counted right after each slider move. The real-viewer tests
(need a display, e.g. ``xvfb-run``) check the default there: planes fused in a background
thread, the slider never waiting for them.
"""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import pytest

from napari_resfuse._napari.background import BackgroundPlanes
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
        viewer,
        "ir",
        "vis",
        outputs=("fused", "detail", "weights", "winning level"),
        background=False,
        **FAST,
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
    first = fuse_layers_lazy(viewer, "ir", "vis", background=False, **FAST)
    again = fuse_layers_lazy(viewer, "ir", "vis", kernel_size=15, background=False, **FAST)
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
    (layer,) = fuse_layers_lazy(viewer, "ir", "vis", outputs=(), background=False, **FAST)
    assert lazy_of(layer).options.value_range == ((0.0, 1020.0), (0.0, 800.0))


def test_lazy_layers_follow_the_layer_transforms(frames):
    """Issue 12's rule for lazy layers: a coarser infrared stack placed by its transform is
    resampled plane by plane onto the visible grid, as ``fuse(..., registration=)`` does."""
    from napari.components import ViewerModel

    from napari_resfuse import fuse
    from napari_resfuse._napari._alignment import data_to_world, registration_from_layers

    ir, vis = frames[0][:3], frames[1][:3]
    coarse = ir[:, ::2, ::2]  # 32 x 48 frames, shown at twice the visible pixel size
    viewer = ViewerModel()
    ir_layer = viewer.add_image(
        da.from_array(coarse, chunks=(1, 32, 48)),
        name="ir",
        contrast_limits=(0, 255),
        scale=(1, 2, 2),
        translate=(0, 1.5, -2.0),
    )
    vis_layer = viewer.add_image(
        da.from_array(vis, chunks=(1, 64, 96)), name="vis", contrast_limits=(0, 255)
    )
    (layer,) = fuse_layers_lazy(viewer, ir_layer, vis_layer, outputs=(), background=False, **FAST)
    assert layer.data.shape == vis.shape
    np.testing.assert_allclose(data_to_world(layer), data_to_world(vis_layer))
    registration = registration_from_layers(ir_layer, vis_layer)
    expected = fuse(coarse[1], vis[1], registration=registration, crop=None, **FAST)
    np.testing.assert_allclose(np.asarray(layer.data[1]), expected.fused, atol=1e-6)


def test_lazy_layers_that_do_not_overlap_are_refused(frames):
    from napari.components import ViewerModel

    viewer = ViewerModel()
    _add_inputs(viewer, frames)
    viewer.layers["ir"].translate = (0, 0, 1000)
    with pytest.raises(ValueError, match=r"'ir'.*'vis'.*do not overlap"):
        fuse_layers_lazy(viewer, "ir", "vis", background=False, **FAST)
    assert len(viewer.layers) == 2


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


class EngineHold:
    """Records the frames ``lazy`` fuses (and in which thread); the engine call of ``frame``
    waits inside the engine until ``release`` is set (``entered`` tells it got there)."""

    def __init__(self, lazy, frame: int):
        self.frame = frame
        self.entered, self.release = threading.Event(), threading.Event()
        self.fused: list[int] = []
        self.threads: list[threading.Thread] = []
        lazy.on_call = self

    def __call__(self, block) -> None:
        self.fused.append(block[0])
        self.threads.append(threading.current_thread())
        if block[0] == self.frame:
            self.entered.set()
            self.release.wait(60)


def _wait_shown(qtbot, layers, timeout=60_000):
    """Process Qt events until every layer shows the plane napari asked it for last."""
    qtbot.waitUntil(lambda: not any(layer.data.pending for layer in layers), timeout=timeout)


def _shown(layer):
    return np.asarray(layer._slice.image.raw)


def test_slider_in_a_real_viewer_fuses_each_viewed_frame_once(viewer, frames, qtbot):
    """The count of the ViewerModel test, in the Qt viewer with background fusion."""
    _add_inputs(viewer, frames)
    # Another seed than the other tests: napari's dask cache is shared by the whole process.
    layers = fuse_layers_lazy(
        viewer, "ir", "vis", outputs=("detail", "winning level"), seed=7, **FAST
    )
    assert all(isinstance(layer.data, BackgroundPlanes) for layer in layers)
    lazy = lazy_of(layers[0])
    _wait_shown(qtbot, layers)
    assert lazy.calls == 1
    viewed = [3, 77, 150]
    for t in viewed:
        viewer.dims.set_current_step(0, t)
        _wait_shown(qtbot, layers)
    assert lazy.calls == 1 + len(viewed)  # one engine call per frame for all five layers
    assert all(layer.loaded for layer in layers)
    ir, vis = frames
    from napari_resfuse import fuse

    expected = fuse(ir[150], vis[150], seed=7, **FAST)
    np.testing.assert_allclose(_shown(layers[0]), expected.fused, atol=1e-6)
    np.testing.assert_allclose(_shown(layers[2]), expected.detail[1], atol=1e-6)
    np.testing.assert_array_equal(_shown(layers[3]), expected.winning_level[0] + 1)  # Labels
    # A frame shown before comes back from the layers' own store: no engine call, no wait.
    viewer.dims.set_current_step(0, 77)
    assert not any(layer.data.pending for layer in layers)
    assert lazy.calls == 1 + len(viewed)


def test_the_slider_never_waits_and_skips_frames_passed_over(viewer, frames, qtbot):
    """The engine is held inside frame 33 until the test lets it go: meanwhile slider moves
    return, the layer shows its last frame and is marked loading, and of the frames passed
    over only the last one is fused afterwards."""
    _add_inputs(viewer, frames)
    (layer,) = fuse_layers_lazy(viewer, "ir", "vis", outputs=(), seed=13, **FAST)
    lazy = lazy_of(layer)
    _wait_shown(qtbot, [layer])
    before = _shown(layer).copy()
    hold = EngineHold(lazy, frame=33)
    try:
        viewer.dims.set_current_step(0, 33)
        assert hold.entered.wait(60)  # frame 33 is being fused, in another thread
        assert hold.threads[0] is not threading.main_thread()
        for t in (34, 35, 36):  # these return while the engine is held
            viewer.dims.set_current_step(0, t)
        assert layer.data.pending
        assert not layer.loaded
        np.testing.assert_array_equal(_shown(layer), before)  # the last frame stays
    finally:
        hold.release.set()
    _wait_shown(qtbot, [layer])
    lazy.on_call = None
    assert hold.fused == [33, 36]
    assert layer.loaded
    ir, vis = frames
    from napari_resfuse import fuse

    expected = fuse(ir[36], vis[36], seed=13, **FAST).fused
    np.testing.assert_allclose(_shown(layer), expected, atol=1e-6)


def test_an_rgb_fused_layer_is_fused_in_the_background(viewer, frames, qtbot):
    ir = frames[0][:4]
    vis = np.stack([frames[1][:4], frames[1][:4] // 2, 255 - frames[1][:4]], axis=-1)
    viewer.add_image(da.from_array(ir, chunks=(1, 64, 96)), name="ir", contrast_limits=(0, 255))
    viewer.add_image(da.from_array(vis, chunks=(1, 64, 96, 3)), name="vis", rgb=True)
    (layer,) = fuse_layers_lazy(viewer, "ir", "vis", outputs=(), **FAST)
    assert layer.rgb and layer.data.slice_ndim == 3
    viewer.dims.set_current_step(0, 1)
    _wait_shown(qtbot, [layer])
    from napari_resfuse import fuse

    expected = fuse(ir[1], vis[1], **FAST).fused
    np.testing.assert_allclose(_shown(layer), expected, atol=1e-6)


def test_removing_the_layer_drops_its_queued_plane(viewer, frames, qtbot):
    _add_inputs(viewer, frames)
    (layer,) = fuse_layers_lazy(viewer, "ir", "vis", outputs=(), seed=17, **FAST)
    lazy = lazy_of(layer)
    _wait_shown(qtbot, [layer])
    hold = EngineHold(lazy, frame=40)
    try:
        viewer.dims.set_current_step(0, 40)
        assert hold.entered.wait(60)
        viewer.dims.set_current_step(0, 41)  # queued behind frame 40
        viewer.layers.remove(layer)
    finally:
        hold.release.set()
    # Frame 40's result comes back; then the queue is empty: the next plane any layer asks
    # for is fused straight away, and frame 41 never was.
    (other,) = fuse_layers_lazy(viewer, "ir", "vis", outputs=(), seed=19, **FAST)
    _wait_shown(qtbot, [other])
    lazy.on_call = None
    assert hold.fused == [40]


def test_a_plane_ready_after_its_layer_was_removed_is_harmless(viewer, frames, qtbot):
    _add_inputs(viewer, frames)
    (layer,) = fuse_layers_lazy(viewer, "ir", "vis", outputs=(), seed=23, **FAST)
    _wait_shown(qtbot, [layer])
    hold = EngineHold(lazy_of(layer), frame=50)
    try:
        viewer.dims.set_current_step(0, 50)
        assert hold.entered.wait(60)
        viewer.layers.remove(layer)  # while its plane is being fused
    finally:
        hold.release.set()
    _wait_shown(qtbot, [layer])  # the refresh ran (pytest-qt fails the test if it raised)
    assert layer not in viewer.layers and layer.loaded


def test_a_plane_that_cannot_be_fused_is_reported_once(viewer, frames, qtbot, notifications):
    ir, vis = (f[:6].astype(np.float32) for f in frames)
    ir[4, 10, 10] = np.nan
    viewer.add_image(da.from_array(ir, chunks=(1, 64, 96)), name="ir", contrast_limits=(0, 255))
    viewer.add_image(da.from_array(vis, chunks=(1, 64, 96)), name="vis", contrast_limits=(0, 255))
    (layer,) = fuse_layers_lazy(viewer, "ir", "vis", outputs=(), **FAST)
    _wait_shown(qtbot, [layer])
    viewer.dims.set_current_step(0, 4)
    _wait_shown(qtbot, [layer])
    errors = [n.message for n in notifications if "could not compute" in n.message]
    assert len(errors) == 1
    assert "'fused [ir + vis]'" in errors[0] and "NaN" in errors[0]
    np.testing.assert_array_equal(_shown(layer), 0)  # nothing pretends to be frame 4
    assert layer.loaded
    viewer.dims.set_current_step(0, 5)
    _wait_shown(qtbot, [layer])
    assert _shown(layer).any()
    computed = layer.data.computed
    viewer.dims.set_current_step(0, 4)  # back to the failed frame: not tried again
    assert not layer.data.pending
    assert layer.data.computed == computed
    assert len([n for n in notifications if "could not compute" in n.message]) == 1


def test_a_rerun_stops_the_earlier_runs_planes(viewer, frames, qtbot):
    _add_inputs(viewer, frames)
    (first,) = fuse_layers_lazy(viewer, "ir", "vis", outputs=(), **FAST)
    old = first.data
    (again,) = fuse_layers_lazy(viewer, "ir", "vis", outputs=(), kernel_size=15, **FAST)
    assert again is first and again.data is not old
    assert old.closed and not again.data.closed
    _wait_shown(qtbot, [again])
    assert lazy_of(again).options.kernel_size == 15


@pytest.mark.parametrize("background", [False, True])
def test_with_async_slicing_the_main_thread_never_fuses(viewer, frames, qtbot, background):
    """Without background fusion, napari's asynchronous slicing gives the same: a slider move
    returns at once and the plane is fused in napari's slicing thread; the engine is held
    there until the test lets it go. Background fusion works under it too."""
    from napari.settings import get_settings

    root = get_settings()
    save_on_change = root._save_on_change
    root._save_on_change = False  # not into the user's settings file
    settings = root.experimental
    previous = settings.async_
    settings.async_ = True
    try:
        _add_inputs(viewer, frames)
        (layer,) = fuse_layers_lazy(
            viewer, "ir", "vis", outputs=(), seed=11, background=background, **FAST
        )
        lazy = lazy_of(layer)
        assert isinstance(layer.data, BackgroundPlanes) == background
        qtbot.waitUntil(lambda: layer.loaded and lazy.calls >= 1, timeout=60_000)
        calls = lazy.calls
        hold = EngineHold(lazy, frame=33)
        viewer.dims.set_current_step(0, 33)  # returns while the plane is being fused
        assert hold.entered.wait(60)
        assert hold.threads[0] is not threading.main_thread()
        hold.release.set()
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
