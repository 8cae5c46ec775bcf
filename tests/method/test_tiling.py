"""Tiled feature extraction equals the untiled run."""

import numpy as np
import pytest
import torch

from napari_resfuse import fuse
from napari_resfuse.method import fuse as fuse_module
from napari_resfuse.method import tiling
from napari_resfuse.method.tiling import auto_tile, tile_spans

from ..conftest import textured_pair


def _structured_pair(shape):
    ir, vis = textured_pair(shape, seed=5)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    ir = np.clip(ir + 60 * np.sin(xx / 37.0) * np.cos(yy / 23.0), 0, 255).astype(np.uint8)
    return ir, vis


def test_tile_spans_cover_the_axis_at_multiples_of_the_tile():
    assert tile_spans(100, 32) == [(0, 32), (32, 64), (64, 96), (96, 100)]
    assert tile_spans(64, 64) == [(0, 64)]


def test_tiled_equals_untiled_within_a_quarter_grey_level():
    """3 x 4 tiles of 128 px with the default halo, seeded random weights."""
    ir, vis = _structured_pair((352, 480))
    full = fuse(ir, vis, weights="random", device="cpu")
    tiled = fuse(ir, vis, weights="random", device="cpu", tile=128)
    assert tiled.params["tile_used"] == 128 and full.params["tile_used"] is None
    assert np.abs(tiled.fused_unclipped - full.fused_unclipped).max() <= 1e-3
    assert np.abs(tiled.weights - full.weights).max() <= 1e-2
    np.testing.assert_array_equal(tiled.base, full.base)  # eq. 1-3 never tile


def test_zero_halo_shows_the_seams():
    """Without the halo the tiles' borders differ: the halo is what makes tiling exact."""
    ir, vis = _structured_pair((256, 256))
    details = torch.from_numpy(np.stack([ir, vis]).astype(np.float32) / 255 - 0.5)[:, None]
    options = fuse_module.FusionOptions(weights="random", device="cpu")
    net = fuse_module.get_feature_network(weights="random", device="cpu")

    def compute(crop):
        return fuse_module.feature_activities(net, crop, options)

    whole = compute(details)
    no_halo = tiling.tiled_activities(compute, details, [2, 4, 8, 16, 32], 128, halo=0)
    halo = tiling.tiled_activities(compute, details, [2, 4, 8, 16, 32], 128, halo=128)
    deep = -1
    err_none = (no_halo[deep] - whole[deep]).abs().max() / whole[deep].abs().max()
    err_halo = (halo[deep] - whole[deep]).abs().max() / whole[deep].abs().max()
    assert err_halo < err_none / 10


def test_auto_tile_only_when_over_budget(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(tiling, "_memory_budget", lambda device: 10**9)
    assert auto_tile(2, 480, 640, cpu) is None
    side = auto_tile(2, 4000, 6000, cpu)
    assert side is not None and side % 32 == 0
    assert (
        tiling.estimate_forward_bytes(
            2, side + 2 * tiling.DEFAULT_HALO, side + 2 * tiling.DEFAULT_HALO
        )
        <= 10**9 * 1.01
    )


def test_out_of_memory_retries_with_smaller_tiles(monkeypatch):
    """Fault injection: a forward pass over more than 128 x 128 px 'runs out of GPU memory'."""
    real = fuse_module.feature_activities

    def limited(network, details, options):
        if details.shape[-1] * details.shape[-2] > 256 * 256:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real(network, details, options)

    monkeypatch.setattr(fuse_module, "feature_activities", limited)
    monkeypatch.setattr(tiling, "DEFAULT_HALO", 32)
    monkeypatch.setattr(fuse_module, "DEFAULT_HALO", 32)
    ir, vis = _structured_pair((256, 320))
    with pytest.warns(RuntimeWarning, match="out of GPU memory"):
        r = fuse(ir, vis, weights="random", device="cpu", layers=("conv1", "conv2_1"))
    assert r.params["tile_used"] == 160  # 320 px halved once


def test_tile_must_be_a_multiple_of_the_stride():
    ir, vis = _structured_pair((64, 64))
    with pytest.raises(ValueError, match="multiple of 32"):
        fuse(ir, vis, weights="random", tile=100)
