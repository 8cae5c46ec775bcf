"""Tests for the structural metrics: the paper's SSIM sum (MATLAB ``ssim``) and SCD."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_resfuse.metrics.structural import scd, ssim_sum

C1 = 0.01**2
C2 = 0.03**2


def _random_triple(seed, shape):
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(0, 256, size=shape, dtype=np.uint8) for _ in range(3))


# --------------------------------------------------------------------------------------------
# Plain-loop references
# --------------------------------------------------------------------------------------------


def _fspecial_gaussian_11():
    """fspecial('gaussian', 11, 1.5): exp(-(x^2 + y^2) / (2 sigma^2)) / sum, x, y in -5..5."""
    weights = [
        [math.exp(-(x * x + y * y) / (2 * 1.5**2)) for x in range(-5, 6)] for y in range(-5, 6)
    ]
    total = sum(sum(row) for row in weights)
    return [[w / total for w in row] for row in weights]


def _filter_replicate(x, weights):
    """imfilter(x, weights, 'replicate'): 11 x 11 window, indices clamped to the image."""
    rows, cols = len(x), len(x[0])
    out = [[0.0] * cols for _ in range(rows)]
    for i in range(rows):
        for j in range(cols):
            total = 0.0
            for u in range(-5, 6):
                for v in range(-5, 6):
                    ii = min(max(i + u, 0), rows - 1)
                    jj = min(max(j + v, 0), cols - 1)
                    total += weights[u + 5][v + 5] * x[ii][jj]
            out[i][j] = total
    return out


def _ssim_loop(a, b):
    """MATLAB ssim(a, b) with default options on [0, 1] images, one pixel at a time."""
    weights = _fspecial_gaussian_11()
    rows, cols = len(a), len(a[0])

    def product(p, q):
        return [[p[i][j] * q[i][j] for j in range(cols)] for i in range(rows)]

    mu_a, mu_b = _filter_replicate(a, weights), _filter_replicate(b, weights)
    e_aa = _filter_replicate(product(a, a), weights)
    e_bb = _filter_replicate(product(b, b), weights)
    e_ab = _filter_replicate(product(a, b), weights)
    total = 0.0
    for i in range(rows):
        for j in range(cols):
            ma, mb = mu_a[i][j], mu_b[i][j]
            var_a, var_b = e_aa[i][j] - ma * ma, e_bb[i][j] - mb * mb
            cov = e_ab[i][j] - ma * mb
            total += ((2 * ma * mb + C1) * (2 * cov + C2)) / (
                (ma * ma + mb * mb + C1) * (var_a + var_b + C2)
            )
    return total / (rows * cols)


def _corr2_loop(x, y):
    """MATLAB corr2 on nested lists."""
    flat_x = [v for row in x for v in row]
    flat_y = [v for row in y for v in row]
    mean_x, mean_y = sum(flat_x) / len(flat_x), sum(flat_y) / len(flat_y)
    sxy = sum((p - mean_x) * (q - mean_y) for p, q in zip(flat_x, flat_y, strict=True))
    sxx = sum((p - mean_x) ** 2 for p in flat_x)
    syy = sum((q - mean_y) ** 2 for q in flat_y)
    return sxy / math.sqrt(sxx * syy)


def _unit(image_u8):
    return (np.asarray(image_u8, dtype=np.float64) / 255.0).tolist()


def _difference(p, q):
    return [[u - v for u, v in zip(rp, rq, strict=True)] for rp, rq in zip(p, q, strict=True)]


# --------------------------------------------------------------------------------------------
# ssim_sum
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "shape"), [(0, (6, 7)), (1, (13, 4)), (2, (1, 3))])
def test_ssim_sum_matches_plain_loop_matlab_ssim(seed, shape):
    ir, vis, fused = _random_triple(seed, shape)
    f = _unit(fused)
    expected = _ssim_loop(f, _unit(ir)) + _ssim_loop(f, _unit(vis))
    assert ssim_sum(ir, vis, fused) == pytest.approx(expected, abs=1e-10)


def test_ssim_sum_of_identical_images_is_two():
    x, _, _ = _random_triple(3, (12, 15))
    assert ssim_sum(x, x, x) == pytest.approx(2.0, abs=1e-12)


def test_ssim_sum_of_constant_images_is_the_luminance_term():
    # Constant images: every local variance and covariance is 0, so each SSIM is
    # (2 mu_F mu_X + C1) / (mu_F^2 + mu_X^2 + C1) (the C2 factors cancel).
    ir = np.full((4, 5), 51, dtype=np.uint8)  # 0.2
    vis = np.full((4, 5), 102, dtype=np.uint8)  # 0.4
    fused = vis.copy()
    expected = (2 * 0.4 * 0.2 + C1) / (0.4**2 + 0.2**2 + C1) + 1.0
    assert ssim_sum(ir, vis, fused) == pytest.approx(expected, abs=1e-12)
    # A 1 x 1 image is constant too (replicated borders).
    one = ssim_sum(ir[:1, :1], vis[:1, :1], fused[:1, :1])
    assert one == pytest.approx(expected, abs=1e-12)


def test_ssim_sum_is_symmetric_in_sources_and_bounded():
    ir, vis, fused = _random_triple(4, (20, 18))
    value = ssim_sum(ir, vis, fused)
    assert value == pytest.approx(ssim_sum(vis, ir, fused), abs=1e-15)
    assert -2.0 <= value <= 2.0
    # The fused image equal to one source: that term is 1, the other is SSIM(IR, VIS) < 1.
    assert 1.0 < ssim_sum(ir, vis, ir) < 2.0


# --------------------------------------------------------------------------------------------
# scd
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "shape"), [(5, (6, 7)), (6, (3, 9)), (7, (1, 5))])
def test_scd_matches_plain_loop_corr2(seed, shape):
    ir, vis, fused = _random_triple(seed, shape)
    a, b, f = _unit(ir), _unit(vis), _unit(fused)
    expected = _corr2_loop(_difference(f, b), a) + _corr2_loop(_difference(f, a), b)
    assert scd(ir, vis, fused) == pytest.approx(expected, abs=1e-12)


def test_scd_of_the_sum_fusion_is_two():
    # F = A + B: F - B = A and F - A = B, so both correlations are 1.
    rng = np.random.default_rng(8)
    ir = rng.integers(0, 120, size=(9, 8), dtype=np.uint8)
    vis = rng.integers(0, 120, size=(9, 8), dtype=np.uint8)
    fused = ir + vis
    assert scd(ir, vis, fused) == pytest.approx(2.0, abs=1e-12)
    # A constant shift of F shifts both differences by a constant: correlations unchanged.
    assert scd(ir, vis, fused + 10) == pytest.approx(2.0, abs=1e-12)


def test_scd_is_symmetric_in_sources_and_bounded():
    ir, vis, fused = _random_triple(9, (10, 11))
    value = scd(ir, vis, fused)
    assert value == pytest.approx(scd(vis, ir, fused), abs=1e-15)
    assert -2.0 <= value <= 2.0
    average = ((ir.astype(np.uint16) + vis) // 2).astype(np.uint8)
    # Averaging keeps each source in the other's difference: a positive SCD.
    assert scd(ir, vis, average) > 0.0


def test_scd_undefined_cases_raise_naming_the_constant_image():
    ir, vis, _ = _random_triple(10, (6, 6))
    with pytest.raises(ValueError, match="fused - visible is constant"):
        scd(ir, vis, vis)
    # F = VIS + c is constant in exact arithmetic; rounding noise (~1e-16) is treated as 0.
    brighter = (vis.astype(np.uint16) * 200 // 255 + 20).astype(np.uint8)
    with pytest.raises(ValueError, match="fused - visible is constant"):
        scd(ir, brighter - 20, brighter)
    with pytest.raises(ValueError, match="infrared is constant"):
        scd(np.full((6, 6), 7, dtype=np.uint8), vis, ir)
    one = np.array([[5]], dtype=np.uint8)
    with pytest.raises(ValueError, match="is constant"):
        scd(one, one, one)


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [ssim_sum, scd])
def test_shape_mismatch_names_both_arguments(metric):
    a = np.zeros((4, 5), dtype=np.uint8)
    b = np.zeros((5, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="infrared and visible"):
        metric(a, b, a)
    with pytest.raises(ValueError, match="infrared and fused"):
        metric(a, a, b)


@pytest.mark.parametrize("metric", [ssim_sum, scd])
def test_bad_inputs_name_the_argument(metric):
    good = np.arange(12, dtype=np.uint8).reshape(3, 4)
    nan = good.astype(float)
    nan[0, 2] = np.nan
    with pytest.raises(ValueError, match="fused"):
        metric(good, good, nan)
    with pytest.raises(ValueError, match="visible"):
        metric(good, np.zeros((3, 0)), good)
    with pytest.raises(ValueError, match="infrared"):
        metric(np.zeros((3, 4, 2)), good, good)
