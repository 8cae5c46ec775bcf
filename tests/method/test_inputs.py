"""Bad input is a clear error naming the input and what is wrong."""

import numpy as np
import pytest

from napari_resfuse import fuse
from napari_resfuse.method.inputs import prepare_pair, rgb_to_ycbcr, ycbcr_to_rgb

from ..conftest import textured_pair


@pytest.fixture
def pair():
    return textured_pair()


def test_shape_mismatch_names_both_shapes(pair):
    ir, vis = pair
    with pytest.raises(ValueError, match=r"infrared \(64, 96\) vs visible \(64, 95\)"):
        prepare_pair(ir, vis[:, :95])


def test_too_small_for_the_network():
    a = np.random.default_rng(0).integers(0, 255, (31, 64), dtype=np.uint8)
    with pytest.raises(ValueError, match="at least 32 px"):
        prepare_pair(a, a)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values(pair, bad):
    ir, vis = pair
    vis = vis.astype(np.float32)
    vis[3, 4] = bad
    with pytest.raises(ValueError, match=r"visible image contains (NaN|inf)"):
        prepare_pair(ir, vis)


def test_empty_and_constant_images(pair):
    ir, _ = pair
    with pytest.raises(ValueError, match="infrared image is empty"):
        prepare_pair(np.zeros((0, 64)), ir[:0])
    with pytest.raises(ValueError, match="visible image is constant"):
        prepare_pair(ir, np.full_like(ir, 7))


@pytest.mark.parametrize("dtype", [bool, complex, "U3"])
def test_unsupported_dtypes(pair, dtype):
    ir, vis = pair
    with pytest.raises(ValueError, match=r"unsupported dtype|at least 2 dimensions"):
        prepare_pair(ir.astype(dtype), vis)


def test_four_channel_visible_is_refused(pair):
    ir, vis = pair
    rgba = np.stack([vis] * 4, axis=-1)
    with pytest.raises(ValueError, match="visible image has 4 channels"):
        prepare_pair(ir, rgba)


def test_one_dimensional_input(pair):
    with pytest.raises(ValueError, match="infrared image must be an array of at least 2"):
        prepare_pair(np.arange(100), pair[1])


def test_ycbcr_round_trip(rng):
    rgb = rng.random((5, 6, 3))
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-5)
    grey = np.full((2, 2, 3), 0.4)
    np.testing.assert_allclose(rgb_to_ycbcr(grey), [[[0.4, 0.5, 0.5]] * 2] * 2, atol=1e-6)


def test_rgb_infrared_uses_its_luminance(pair):
    ir, vis = pair
    rgb_ir = np.stack([ir] * 3, axis=-1)
    prepared = prepare_pair(rgb_ir, vis)
    np.testing.assert_allclose(prepared.infrared[0], ir / 255.0, atol=1e-5)


def test_errors_reach_the_caller_of_fuse(pair):
    ir, vis = pair
    with pytest.raises(ValueError, match="differ in shape"):
        fuse(ir, vis.T, weights="random")
