"""average and two_scale_max against plain-loop references."""

import numpy as np
import pytest

from napari_resfuse.baselines import average, two_scale_max


def _reflect_index(i, n):
    """Index into a length-n axis, reflecting without repeating the edge (numpy 'reflect')."""
    while i < 0 or i >= n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


def _box_mean_loop(image, size, replicate=False):
    h, w = image.shape
    r = size // 2
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            total = 0.0
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    if replicate:
                        yy, xx = min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)
                    else:
                        yy, xx = _reflect_index(y + dy, h), _reflect_index(x + dx, w)
                    total += image[yy, xx]
            out[y, x] = total / size**2
    return out


def test_average_is_the_pixel_mean():
    ir = np.array([[0.0, 0.2], [1.0, 0.4]])
    vis = np.array([[1.0, 0.6], [0.0, 0.4]])
    np.testing.assert_allclose(average(ir, vis), [[0.5, 0.4], [0.5, 0.4]], atol=1e-7)


@pytest.mark.parametrize(("shape", "size"), [((9, 11), 5), ((12, 7), 3), ((8, 8), 7)])
def test_two_scale_max_matches_a_loop_reference(shape, size):
    rng = np.random.default_rng(4)
    ir, vis = rng.random(shape), rng.random(shape)
    base_ir, base_vis = _box_mean_loop(ir, size), _box_mean_loop(vis, size)
    d_ir, d_vis = ir - base_ir, vis - base_vis
    expected = np.empty(shape)
    for y in range(shape[0]):
        for x in range(shape[1]):
            detail = d_ir[y, x] if abs(d_ir[y, x]) >= abs(d_vis[y, x]) else d_vis[y, x]
            expected[y, x] = 0.3 * base_ir[y, x] + 0.7 * base_vis[y, x] + detail
    fused = two_scale_max(ir, vis, kernel_size=size, base_weights=(0.3, 0.7))
    np.testing.assert_allclose(fused, expected, atol=1e-6)


def test_two_scale_max_replicates_where_the_image_is_smaller_than_the_pad():
    rng = np.random.default_rng(5)
    ir, vis = rng.random((6, 20)), rng.random((6, 20))  # pad 15 >= 6 rows
    expected_base = 0.5 * (_box_mean_loop(ir, 31, True) + _box_mean_loop(vis, 31, True))
    d_ir = ir - _box_mean_loop(ir, 31, True)
    d_vis = vis - _box_mean_loop(vis, 31, True)
    expected = expected_base + np.where(np.abs(d_ir) >= np.abs(d_vis), d_ir, d_vis)
    np.testing.assert_allclose(two_scale_max(ir, vis), expected, atol=1e-6)


def test_two_scale_max_of_constant_images_is_the_weighted_base():
    ir, vis = np.full((40, 40), 0.8), np.full((40, 40), 0.2)
    np.testing.assert_allclose(two_scale_max(ir, vis), 0.5, atol=1e-6)
    np.testing.assert_allclose(two_scale_max(ir, vis, base_weights=(0.6, 0.4)), 0.56, atol=1e-6)


def test_two_scale_max_keeps_the_stronger_detail():
    # A bright dot in the infrared image on a flat visible one survives at full contrast
    # (minus the share the mean filter spreads into the base).
    ir = np.zeros((41, 41))
    ir[20, 20] = 1.0
    vis = np.full((41, 41), 0.5)
    fused = two_scale_max(ir, vis)
    base = 0.5 * (1.0 / 31**2) + 0.5 * 0.5
    assert fused[20, 20] == pytest.approx(base + 1.0 - 1.0 / 31**2, abs=1e-6)


@pytest.mark.parametrize("bad", [0, 4, -3, 2.5, True])
def test_two_scale_max_rejects_bad_kernel_sizes(bad):
    with pytest.raises(ValueError, match="kernel_size"):
        two_scale_max(np.zeros((8, 8)), np.zeros((8, 8)), kernel_size=bad)


@pytest.mark.parametrize("bad", [(0.5,), (0.5, 0.5, 0.1), (np.nan, 0.5)])
def test_two_scale_max_rejects_bad_base_weights(bad):
    with pytest.raises(ValueError, match="base_weights"):
        two_scale_max(np.zeros((8, 8)), np.zeros((8, 8)), base_weights=bad)
