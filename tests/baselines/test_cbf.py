"""Cross bilateral filter fusion against plain-loop references of the author's MATLAB code."""

import numpy as np
import pytest

from napari_resfuse.baselines import cbf, cross_bilateral_filter
from napari_resfuse.baselines.cbf import _pixel_significance


def _reflect_pad(image, pad):
    """per_extn_im_fn.m: mirror without repeating the edge row/column, rows then columns."""
    h, w = image.shape
    out = np.zeros((h + 2 * pad, w + 2 * pad))
    out[pad : pad + h, pad : pad + w] = image
    for k in range(1, pad + 1):
        out[pad - k, :] = out[pad + k, :]
        out[pad + h - 1 + k, :] = out[pad + h - 1 - k, :]
    for k in range(1, pad + 1):
        out[:, pad - k] = out[:, pad + k]
        out[:, pad + w - 1 + k] = out[:, pad + w - 1 - k]
    return out


def _cbf_loop(x1, x2, sigma_s, sigma_r, ksize):
    """cross_bilateral_filt2Df.m, one pixel at a time."""
    half = ksize // 2
    offsets = np.arange(-half, half + 1)
    gk = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma_s**2))
    xm1, xm2 = _reflect_pad(x1, half), _reflect_pad(x2, half)
    out = np.zeros(x1.shape)
    for i in range(x1.shape[0]):
        for j in range(x1.shape[1]):
            t1 = xm1[i : i + ksize, j : j + ksize]
            t2 = xm2[i : i + ksize, j : j + ksize]
            rgk = np.exp(-((t2 - t2[half, half]) ** 2) / (2 * sigma_r**2))
            out[i, j] = np.sum(t1 * gk * rgk) / np.sum(gk * rgk)
    return out


def _significance_loop(detail, window):
    """cbf_ieeeconf2011f.m: eigenvalue sums of the covariance of each window and its transpose."""
    half = window // 2
    padded = _reflect_pad(detail, half)
    out = np.zeros(detail.shape)
    for i in range(detail.shape[0]):
        for j in range(detail.shape[1]):
            tt = padded[i : i + window, j : j + window]
            horizontal = np.linalg.eigvalsh(np.cov(tt, rowvar=False)).sum()
            vertical = np.linalg.eigvalsh(np.cov(tt.T, rowvar=False)).sum()
            out[i, j] = horizontal + vertical
    return out


@pytest.mark.parametrize(
    ("shape", "ksize", "sigma_s", "sigma_r"),
    [((9, 8), 5, 1.0, 20.0), ((13, 12), 11, 1.8, 25.0), ((7, 15), 3, 0.7, 5.0)],
)
def test_cross_bilateral_filter_matches_a_loop(shape, ksize, sigma_s, sigma_r):
    rng = np.random.default_rng(10)
    x1 = rng.integers(0, 256, shape).astype(float)
    x2 = rng.integers(0, 256, shape).astype(float)
    got = cross_bilateral_filter(x1, x2, sigma_s=sigma_s, sigma_r=sigma_r, kernel_size=ksize)
    np.testing.assert_allclose(got, _cbf_loop(x1, x2, sigma_s, sigma_r, ksize), rtol=1e-12)


def test_cross_bilateral_filter_uses_the_guide_for_range_weights():
    # A strong step in the guide stops the averaging across it: changing the image on one side
    # leaves the other side's output unchanged.
    guide = np.zeros((12, 12))
    guide[:, 6:] = 255.0
    image = np.random.default_rng(11).random((12, 12))
    changed = image.copy()
    changed[:, 6:] += 100.0
    out = cross_bilateral_filter(image, guide, sigma_r=1.0)
    out_changed = cross_bilateral_filter(changed, guide, sigma_r=1.0)
    np.testing.assert_allclose(out_changed[:, :6], out[:, :6], atol=1e-10)
    assert np.all(np.abs(out_changed[:, 6:] - out[:, 6:] - 100.0) < 1e-8)


def test_pixel_significance_is_the_sum_of_covariance_eigenvalues():
    detail = np.random.default_rng(12).normal(size=(9, 11)) * 10
    np.testing.assert_allclose(
        _pixel_significance(detail, 5), _significance_loop(detail, 5), rtol=1e-10
    )
    assert np.all(_pixel_significance(detail, 5) >= 0)


def test_cbf_matches_an_end_to_end_loop_reference():
    rng = np.random.default_rng(13)
    ir = rng.integers(0, 256, (14, 13), dtype=np.uint8)
    vis = rng.integers(0, 256, (14, 13), dtype=np.uint8)
    x1, x2 = ir.astype(float), vis.astype(float)
    d1 = x1 - _cbf_loop(x1, x2, 1.8, 25.0, 11)
    d2 = x2 - _cbf_loop(x2, x1, 1.8, 25.0, 11)
    w1, w2 = _significance_loop(d1, 5), _significance_loop(d2, 5)
    w1[w1 == 0] = np.finfo(float).eps
    w2[w2 == 0] = np.finfo(float).eps
    expected = (x1 * w1 + x2 * w2) / (w1 + w2) / 255.0
    np.testing.assert_allclose(cbf(ir, vis), expected, atol=1e-6)


def test_cbf_is_a_per_pixel_convex_combination_of_the_sources():
    rng = np.random.default_rng(14)
    ir, vis = rng.random((30, 34)), rng.random((30, 34))
    fused = cbf(ir, vis)
    assert np.all(fused >= np.minimum(ir, vis) - 1e-6)
    assert np.all(fused <= np.maximum(ir, vis) + 1e-6)


def test_cbf_takes_the_textured_source_where_the_other_is_flat():
    vis = np.random.default_rng(15).random((25, 25))
    ir = np.full((25, 25), 0.3)
    np.testing.assert_allclose(cbf(ir, vis), vis, atol=1e-6)


def test_cbf_averages_where_both_sources_are_flat():
    # Zero significance on both sides is replaced by eps: equal weights.
    fused = cbf(np.full((16, 16), 0.2), np.full((16, 16), 0.6))
    np.testing.assert_allclose(fused, 0.4, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"kernel_size": 4}, "kernel_size"),
        ({"cov_window": 1}, "cov_window"),
        ({"sigma_s": 0}, "sigma_s"),
        ({"sigma_r": -1.0}, "sigma_r"),
    ],
)
def test_cbf_rejects_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        cbf(np.zeros((8, 8)), np.zeros((8, 8)), **kwargs)
