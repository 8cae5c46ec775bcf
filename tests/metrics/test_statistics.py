"""Tests of SD, SF, AG, PSNR, CC and VIF (napari_resfuse.metrics.statistics).

The reference values come from plain loops written from the MATLAB sources' formulas (VIFB's
metricsVariance / metricsSpatial_frequency / metricsAvg_gradient / metricsPsnr, LIVE's
vifp_mscale), or from closed forms worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_resfuse.metrics.statistics import (
    average_gradient,
    cc,
    psnr,
    spatial_frequency,
    std,
    vif,
)

STATS = (std, spatial_frequency, average_gradient)


def _random_uint8(seed: int, shape=(9, 7)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


# --------------------------------------------------------------------------------------------------
# Plain-loop references (grey levels 0-255, as MATLAB's double() of an 8-bit image)
# --------------------------------------------------------------------------------------------------


def _loop_std(f):
    m, n = f.shape
    mean = sum(f[i, j] for i in range(m) for j in range(n)) / (m * n)
    return math.sqrt(sum((f[i, j] - mean) ** 2 for i in range(m) for j in range(n)) / (m * n))


def _loop_sf(f):
    m, n = f.shape
    rf = sum((f[i, j] - f[i, j - 1]) ** 2 for i in range(m) for j in range(1, n)) / (m * n)
    cf = sum((f[i, j] - f[i - 1, j]) ** 2 for j in range(n) for i in range(1, m)) / (m * n)
    return math.sqrt(rf + cf)


def _matlab_gradient_1d(values):
    """MATLAB's gradient of a vector: one-sided at the ends, central inside."""
    k = len(values)
    out = [0.0] * k
    out[0] = values[1] - values[0]
    out[-1] = values[-1] - values[-2]
    for t in range(1, k - 1):
        out[t] = (values[t + 1] - values[t - 1]) / 2.0
    return out


def _loop_ag(f):
    m, n = f.shape
    gx = [_matlab_gradient_1d([f[i, j] for j in range(n)]) for i in range(m)]  # gx[i][j]
    gy = [_matlab_gradient_1d([f[i, j] for i in range(m)]) for j in range(n)]  # gy[j][i]
    total = sum(
        math.sqrt((gx[i][j] ** 2 + gy[j][i] ** 2) / 2.0) for i in range(m) for j in range(n)
    )
    return total / ((m - 1) * (n - 1))


def _loop_psnr(a, b, f):
    m, n = f.shape

    def vifb_mse(x):
        return math.sqrt(sum((x[i, j] - f[i, j]) ** 2 for i in range(m) for j in range(n))) / (
            m * n
        )

    mes = (vifb_mse(a) + vifb_mse(b)) / 2.0
    return 20.0 * math.log10(255.0 / math.sqrt(mes))


def _fspecial_gaussian(size):
    sigma = size / 5.0
    c = (size - 1) / 2.0
    h = np.array(
        [
            [math.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * sigma**2)) for x in range(size)]
            for y in range(size)
        ]
    )
    h[h < np.finfo(float).eps * h.max()] = 0.0
    return h / h.sum()


def _filter2_valid(win, x):
    size = win.shape[0]
    rows, cols = x.shape[0] - size + 1, x.shape[1] - size + 1
    out = np.zeros((max(rows, 0), max(cols, 0)))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(win * x[i : i + size, j : j + size])
    return out


def _loop_vifp(ref, dist):
    """LIVE's vifp_mscale.m, statement by statement, with a 2-D kernel and explicit windows."""
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        win = _fspecial_gaussian(n)
        if scale > 1:
            ref = _filter2_valid(win, ref)[::2, ::2]
            dist = _filter2_valid(win, dist)[::2, ::2]
        mu1 = _filter2_valid(win, ref)
        mu2 = _filter2_valid(win, dist)
        s1 = _filter2_valid(win, ref * ref) - mu1 * mu1
        s2 = _filter2_valid(win, dist * dist) - mu2 * mu2
        s12 = _filter2_valid(win, ref * dist) - mu1 * mu2
        for idx in np.ndindex(s1.shape):
            a, b, c = max(s1[idx], 0.0), max(s2[idx], 0.0), s12[idx]
            g = c / (a + 1e-10)
            sv = b - g * c
            if a < 1e-10:
                g, sv, a = 0.0, b, 0.0
            if b < 1e-10:
                g, sv = 0.0, 0.0
            if g < 0:
                sv, g = b, 0.0
            sv = max(sv, 1e-10)
            num += math.log10(1 + g * g * a / (sv + 2.0))
            den += math.log10(1 + a / 2.0)
    return num / den


# --------------------------------------------------------------------------------------------------
# SD, SF, AG
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", STATS)
def test_constant_image_has_no_contrast_or_detail(metric):
    flat = np.full((6, 5), 100, dtype=np.uint8)
    assert metric(flat, flat, flat) == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_statistics_match_loop_references(seed):
    f = _random_uint8(seed)
    src = _random_uint8(seed + 10)
    grey = f.astype(float)
    assert std(src, src, f) == pytest.approx(_loop_std(grey), rel=1e-12)
    assert spatial_frequency(src, src, f) == pytest.approx(_loop_sf(grey), rel=1e-12)
    assert average_gradient(src, src, f) == pytest.approx(_loop_ag(grey), rel=1e-12)


def test_statistics_on_a_2x2_image_by_hand():
    f = np.array([[0, 10], [20, 40]], dtype=np.uint8)
    # mean 17.5; squared deviations 306.25 + 56.25 + 6.25 + 506.25 = 875 over 4 pixels
    assert std(f, f, f) == pytest.approx(math.sqrt(875 / 4))
    # row differences 10, 20 -> 500 / 4; column differences 20, 30 -> 1300 / 4
    assert spatial_frequency(f, f, f) == pytest.approx(math.sqrt(500 / 4 + 1300 / 4))
    # one-sided gradients: gx = 10 (row 0), 20 (row 1); gy = 20 (column 0), 30 (column 1)
    expected_ag = (
        math.sqrt((10**2 + 20**2) / 2)
        + math.sqrt((10**2 + 30**2) / 2)
        + math.sqrt((20**2 + 20**2) / 2)
        + math.sqrt((20**2 + 30**2) / 2)
    ) / 1
    assert average_gradient(f, f, f) == pytest.approx(expected_ag)


@pytest.mark.parametrize("metric", STATS)
def test_statistics_ignore_an_intensity_offset_and_the_sources(metric):
    f = _random_uint8(3, (8, 8)) // 2  # values 0..127, room for +100
    a, b = _random_uint8(4, (8, 8)), _random_uint8(5, (8, 8))
    base = metric(a, b, f)
    assert metric(a, b, f + np.uint8(100)) == pytest.approx(base, rel=1e-12)
    assert metric(b, a, f) == base


@pytest.mark.parametrize("metric", STATS)
def test_statistics_are_transpose_invariant(metric):
    f = _random_uint8(6, (7, 11))
    assert metric(f.T, f.T, f.T) == pytest.approx(metric(f, f, f), rel=1e-12)


def test_statistics_are_nonnegative_and_tiny_images_work():
    one = np.array([[7]], dtype=np.uint8)
    assert std(one, one, one) == 0.0
    assert spatial_frequency(one, one, one) == 0.0
    with pytest.raises(ValueError, match="at least 2 x 2"):
        average_gradient(one, one, one)
    row = np.array([[0, 255, 0]], dtype=np.uint8)
    assert spatial_frequency(row, row, row) == pytest.approx(math.sqrt(2 * 255**2 / 3))
    f = _random_uint8(7)
    assert min(m(f, f, f) for m in STATS) > 0.0


def test_closed_forms_on_generated_ramp_and_checkerboard():
    """Regression on generated images whose values follow from the formulas by hand.

    Ramp F[i, j] = 3 j (M = 6 rows, N = 10 columns): every horizontal difference and every
    gradient is 3, every vertical one 0, so SF = 3 sqrt((N - 1) / N),
    AG = M N (3 / sqrt 2) / ((M - 1)(N - 1)) and SD = 3 sqrt((N^2 - 1) / 12) (population SD of
    0, 3, ..., 27). Checkerboard of 0 and 255 (M = 4, N = 5): every neighbour difference is 255,
    so SF = 255 sqrt((M (N - 1) + (M - 1) N) / (M N)), SD = 255 sqrt(p (1 - p)) with p = 10/20.
    """
    m, n = 6, 10
    ramp = np.tile(3 * np.arange(n, dtype=np.uint8), (m, 1))
    assert spatial_frequency(ramp, ramp, ramp) == pytest.approx(3 * math.sqrt((n - 1) / n))
    assert average_gradient(ramp, ramp, ramp) == pytest.approx(
        m * n * (3 / math.sqrt(2)) / ((m - 1) * (n - 1))
    )
    assert std(ramp, ramp, ramp) == pytest.approx(3 * math.sqrt((n * n - 1) / 12))

    m, n = 4, 5
    board = (np.indices((m, n)).sum(axis=0) % 2 * 255).astype(np.uint8)
    assert spatial_frequency(board, board, board) == pytest.approx(
        255 * math.sqrt((m * (n - 1) + (m - 1) * n) / (m * n))
    )
    assert std(board, board, board) == pytest.approx(255 * math.sqrt(0.5 * 0.5))


# --------------------------------------------------------------------------------------------------
# PSNR
# --------------------------------------------------------------------------------------------------


def test_psnr_of_identical_images_is_infinite():
    a = _random_uint8(8)
    assert psnr(a, a, a) == math.inf


def test_psnr_of_a_pure_offset_by_hand():
    # IR = VIS = 0, F = 10 on 8 x 8: VIFB's e = sqrt(64 * 100) / 64 = 1.25 for each source.
    zero = np.zeros((8, 8), dtype=np.uint8)
    f = np.full((8, 8), 10, dtype=np.uint8)
    assert psnr(zero, zero, f) == pytest.approx(20 * math.log10(255 / math.sqrt(1.25)))


def test_psnr_of_a_one_level_offset_ramp():
    # IR = ramp, VIS = ramp + 2, F = ramp + 1: every error is 1, so e = 1 / sqrt(MN) for both
    # sources and PSNR = 20 log10(255) + 5 log10(MN).
    ramp = np.tile(np.arange(0, 200, 10, dtype=np.uint8), (12, 1))
    value = psnr(ramp, ramp + np.uint8(2), ramp + np.uint8(1))
    assert value == pytest.approx(20 * math.log10(255) + 5 * math.log10(ramp.size))


@pytest.mark.parametrize("seed", [0, 1])
def test_psnr_matches_loop_reference_and_is_symmetric(seed):
    a, b, f = _random_uint8(seed), _random_uint8(seed + 20), _random_uint8(seed + 40)
    expected = _loop_psnr(a.astype(float), b.astype(float), f.astype(float))
    assert psnr(a, b, f) == pytest.approx(expected, rel=1e-12)
    assert psnr(b, a, f) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------------------------
# CC
# --------------------------------------------------------------------------------------------------


def test_cc_identical_negated_and_affine():
    a = _random_uint8(9, (10, 10)) // 2 * 2  # even values, so a // 2 is exact
    assert cc(a, a, a) == pytest.approx(1.0)
    assert cc(a, a, 255 - a) == pytest.approx(-1.0)
    b = _random_uint8(10, (10, 10))
    assert cc(a, b, a // 2 + 20) == pytest.approx(cc(a, b, a), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_cc_matches_numpy_corrcoef_and_is_symmetric(seed):
    a, b, f = _random_uint8(seed), _random_uint8(seed + 20), _random_uint8(seed + 40)
    expected = (
        np.corrcoef(a.ravel().astype(float), f.ravel().astype(float))[0, 1]
        + np.corrcoef(b.ravel().astype(float), f.ravel().astype(float))[0, 1]
    ) / 2
    assert cc(a, b, f) == pytest.approx(expected, rel=1e-12)
    assert cc(b, a, f) == pytest.approx(expected, rel=1e-12)
    assert -1.0 <= cc(a, b, f) <= 1.0


@pytest.mark.parametrize("which", ["infrared", "visible", "fused"])
def test_cc_of_a_constant_image_is_a_clear_error(which):
    images = {"infrared": _random_uint8(1), "visible": _random_uint8(2), "fused": _random_uint8(3)}
    images[which] = np.full((9, 7), 5, dtype=np.uint8)
    with pytest.raises(ValueError, match=f"{which} is constant"):
        cc(**images)


# --------------------------------------------------------------------------------------------------
# VIF
# --------------------------------------------------------------------------------------------------


def _smooth_random(seed: int, shape=(40, 40)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=shape).cumsum(axis=0).cumsum(axis=1)
    base = (base - base.min()) / (base.max() - base.min())
    return np.round(255 * base).astype(np.uint8)


def test_vif_matches_loop_reference_of_vifp_mscale():
    # 40 x 40: scales 1-3 contribute, scale 4 is empty, as in MATLAB's 'valid' filtering.
    a, b = _smooth_random(0), _smooth_random(1)
    f = ((a.astype(int) + b.astype(int)) // 2).astype(np.uint8)
    expected = _loop_vifp(a.astype(float), f.astype(float)) + _loop_vifp(
        b.astype(float), f.astype(float)
    )
    assert vif(a, b, f) == pytest.approx(expected, rel=1e-9)


def test_vif_of_identical_images_is_two_and_noise_lowers_it():
    a = _smooth_random(2, (48, 48))
    assert vif(a, a, a) == pytest.approx(2.0, abs=1e-6)
    noise = np.random.default_rng(3).normal(0, 20, size=a.shape)
    noisy = np.clip(a + noise, 0, 255).astype(np.uint8)
    assert 0.0 < vif(a, a, noisy) < vif(a, a, a)


def test_vif_of_a_constant_fused_image_is_zero():
    a, b = _smooth_random(4), _smooth_random(5)
    flat = np.full(a.shape, 128, dtype=np.uint8)
    assert vif(a, b, flat) == 0.0


def test_vif_undefined_cases_are_clear_errors():
    a = _smooth_random(6)
    flat = np.full(a.shape, 9, dtype=np.uint8)
    with pytest.raises(ValueError, match="visible is constant"):
        vif(a, flat, a)
    small = a[:16, :30]
    with pytest.raises(ValueError, match="at least 17 x 17"):
        vif(small, small, small)


# --------------------------------------------------------------------------------------------------
# Input validation (shared by all six)
# --------------------------------------------------------------------------------------------------

ALL = (std, spatial_frequency, average_gradient, psnr, cc, vif)


@pytest.mark.parametrize("metric", ALL)
def test_shape_mismatch_names_the_argument(metric):
    a = _random_uint8(0, (20, 20))
    with pytest.raises(ValueError, match="fused"):
        metric(a, a, a[:, :19])


@pytest.mark.parametrize("metric", ALL)
def test_nan_and_empty_inputs_name_the_argument(metric):
    a = _random_uint8(0, (20, 20)) / 255.0
    bad = a.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="visible"):
        metric(a, bad, a)
    with pytest.raises(ValueError, match="infrared"):
        metric(np.zeros((0, 20)), a, a)


def test_float_inputs_are_taken_as_given_on_0_1():
    # A float image is not stretched: 0.2 is grey level 51 whatever the other pixels are.
    f = np.array([[0.2, 0.4], [0.6, 0.8]])
    as_uint8 = np.array([[51, 102], [153, 204]], dtype=np.uint8)
    for metric in (std, spatial_frequency, average_gradient):
        assert metric(f, f, f) == pytest.approx(metric(as_uint8, as_uint8, as_uint8), rel=1e-14)
