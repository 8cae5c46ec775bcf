"""Dask-backed stacks in the fusion widget and fuse_layers: lazy layers, then save all."""

from __future__ import annotations

import dask.array as da
import numpy as np
import zarr

from napari_resfuse import fuse, fuse_layers
from napari_resfuse._napari._widget import FusionWidget
from napari_resfuse._napari.background import BackgroundPlanes
from napari_resfuse._napari.lazy_layers import lazy_of

from ..conftest import textured_pair
from .conftest import wait_for_run

FAST = {"weights": "random", "layers": ("conv1", "conv2_1")}


def _dask_pair(n=4):
    pairs = [textured_pair(seed=s) for s in range(n)]
    ir = np.stack([p[0] for p in pairs])
    vis = np.stack([p[1] for p in pairs])
    return ir, vis, da.from_array(ir, chunks=(1, 64, 96)), da.from_array(vis, chunks=(1, 64, 96))


def test_fuse_layers_on_dask_stacks_gives_lazy_layers(viewer):
    ir, vis, dir_, dvis = _dask_pair()
    viewer.add_image(dir_, name="ir")
    viewer.add_image(dvis, name="vis")
    layers = fuse_layers(viewer, "ir", "vis", **FAST)
    lazy = lazy_of(layers[0])
    assert lazy is not None
    assert lazy.calls <= 1  # at most the plane on display
    assert isinstance(layers[0].data, BackgroundPlanes)  # the viewer never waits for a plane
    plane = np.asarray(layers[0].data.array[2])
    expected = fuse(ir, vis, **FAST).fused[2]
    np.testing.assert_allclose(plane, expected, atol=1e-5)


def test_widget_adds_lazy_layers_and_saves_every_plane(qtbot, viewer, tmp_path):
    ir, vis, dir_, dvis = _dask_pair()
    viewer.add_image(dir_, name="ir")
    viewer.add_image(dvis, name="vis")
    widget = FusionWidget(viewer)
    widget.set_options(**FAST)
    assert widget.run() is None  # no thread worker: lazy layers are added at once
    assert lazy_of(widget.last_layers[0]) is not None
    assert widget.save_button.visible or not widget.native.isVisible()
    worker = widget.save_all(tmp_path / "fused.zarr")
    assert worker is not None
    wait_for_run(qtbot, widget)
    saved = zarr.open_group(str(tmp_path / "fused.zarr"), mode="r")["fused"][:]
    expected = fuse(ir, vis, **FAST).fused
    assert saved.shape == expected.shape
    assert np.abs(saved.astype(np.float64) / 255 - expected).max() <= 1 / 255 + 1e-6
