"""Tests of fast-FMI and the MATLAB ``edge`` port (napari_resfuse.metrics.fmi / ._edge).

The reference here is a plain, loop-by-loop transcription of the MATLAB ``analysis_fmi.m`` (one
window and one (i, j) cell at a time, in the code's order), run on tiny images; the vectorised
implementation must agree with it to rounding. Feature maps are also built independently (DCT
by its basis matrix, the gradient and the Sobel edge rule by loops).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import pywt

from napari_resfuse.metrics._edge import sobel_edge
from napari_resfuse.metrics.fmi import (
    FMI_FEATURES,
    fmi,
    fmi_dct,
    fmi_pixel,
    fmi_wavelet,
    matlab_dmey,
)

# --------------------------------------------------------------------------------------------------
# Plain-loop reference of analysis_fmi.m
# --------------------------------------------------------------------------------------------------


def _loop_window_fmi(x, y):
    """fmi_af of the MATLAB code for one source window x and fused window y (2-D arrays)."""
    if np.array_equal(x, y):
        return 1.0
    w = x.shape[0]
    n = w * w

    def pdf_of(sub):
        if sub.max() == sub.min():
            sub = np.ones_like(sub)
        else:
            sub = (sub - sub.min()) / (sub.max() - sub.min())
        values = [float(v) for v in sub.flatten(order="F")]  # MATLAB x(:)
        total = sum(values)
        return [v / total for v in values]

    a, f = pdf_of(x), pdf_of(y)
    a_cdf = [sum(a[: i + 1]) for i in range(n)]
    f_cdf = [sum(f[: i + 1]) for i in range(n)]
    a_mean, f_mean = math.fsum(a) / n, math.fsum(f) / n  # exact sums: uniform PDF -> c = 0
    num = sum((a[i] - a_mean) * (f[i] - f_mean) for i in range(n))
    if num == 0:
        c = 0.0
    else:
        den = sum((v - a_mean) ** 2 for v in a) * sum((v - f_mean) ** 2 for v in f)
        c = num / math.sqrt(den)

    def sd(p):
        e1 = sum((i + 1) * p[i] for i in range(n))
        e2 = sum((i + 1) ** 2 * p[i] for i in range(n))
        return math.sqrt(max(e2 - e1 * e1, 0.0))

    a_sd, f_sd = sd(a), sd(f)

    if c >= 0:

        def bound(u, v):
            return 0.5 * (u + v - abs(u - v))

    else:

        def bound(u, v):
            return 0.5 * (u + v - 1 + abs(u + v - 1))

    if (c >= 0 and c == 0) or a_sd == 0 or f_sd == 0:
        mix = 0.0
    else:
        cov = sum(
            bound(f_cdf[i], a_cdf[j]) - f_cdf[i] * a_cdf[j] for i in range(n) for j in range(n)
        )
        mix = c / (cov / (f_sd * a_sd))

    def cell_bound(i, j):
        return 0.0 if i < 0 or j < 0 else bound(f_cdf[i], a_cdf[j])

    joint = 0.0
    for i in range(n):
        for j in range(n):
            mass = (
                cell_bound(i, j)
                - cell_bound(i - 1, j)
                - cell_bound(i, j - 1)
                + cell_bound(i - 1, j - 1)
            )
            p = mix * mass + (1 - mix) * f[i] * a[j]
            if p != 0:
                joint += -p * math.log2(abs(p))
    h_a = -sum(p * math.log2(p) for p in a if p > 0)
    h_f = -sum(p * math.log2(p) for p in f if p > 0)
    mi = h_a + h_f - joint
    return 0.0 if mi == 0 else 2 * mi / (h_a + h_f)


def _loop_fmi(a_feat, b_feat, f_feat, window=3):
    half = window // 2
    rows, cols = a_feat.shape
    values = []
    for p in range(half, rows - half):
        for q in range(half, cols - half):
            box = np.s_[p - half : p + half + 1, q - half : q + half + 1]
            values.append(
                (
                    _loop_window_fmi(a_feat[box], f_feat[box])
                    + _loop_window_fmi(b_feat[box], f_feat[box])
                )
                / 2
            )
    return sum(values) / len(values)


def _loop_sobel_edge(image):
    """MATLAB edge(I) (Sobel, automatic threshold, thinning), pixel by pixel."""
    m, n = image.shape

    def px(r, c):  # replicated borders
        return image[min(max(r, 0), m - 1), min(max(c, 0), n - 1)]

    # Terms in MATLAB's accumulation order: positive side (weights 1, 2, 1), then negative side.
    x_terms = [(-1, -1, 1), (0, -1, 2), (1, -1, 1), (-1, 1, -1), (0, 1, -2), (1, 1, -1)]
    bx = np.zeros((m, n))
    by = np.zeros((m, n))
    for r in range(m):
        for c in range(n):
            for dr, dc, weight in x_terms:
                bx[r, c] += weight / 8 * px(r + dr, c + dc)
                by[r, c] += weight / 8 * px(r + dc, c + dr)
    b = bx**2 + by**2
    cutoff = 4 * b.mean()
    tol = 100 * np.finfo(float).eps
    edges = np.zeros((m, n), dtype=bool)
    for r in range(m):
        for c in range(n):
            left = c == 0 or b[r, c - 1] <= b[r, c]
            right = c == n - 1 or b[r, c] > b[r, c + 1]
            up = r == 0 or b[r - 1, c] <= b[r, c]
            down = r == m - 1 or b[r, c] > b[r + 1, c]
            vertical = abs(bx[r, c]) >= abs(by[r, c]) - tol and left and right
            horizontal = abs(by[r, c]) >= abs(bx[r, c]) - tol and up and down
            edges[r, c] = b[r, c] > cutoff and (vertical or horizontal)
    return edges


def _dct2_by_matrix(image):
    """Orthonormal 2-D DCT-II, C X C^T with the DCT basis matrices written out."""

    def basis(n):
        k = np.arange(n)[:, None]
        i = np.arange(n)[None, :]
        c = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
        c[0] /= np.sqrt(2.0)
        return c

    rows, cols = image.shape
    return basis(rows) @ image @ basis(cols).T


def _loop_gradient_x(image):
    """MATLAB gradient(I) first output: d/dx, central inside, one-sided on the edges."""
    out = np.zeros_like(image)
    n = image.shape[1]
    for c in range(n):
        if c == 0:
            out[:, c] = image[:, 1] - image[:, 0]
        elif c == n - 1:
            out[:, c] = image[:, -1] - image[:, -2]
        else:
            out[:, c] = (image[:, c + 1] - image[:, c - 1]) / 2
    return out


def _tiled_wavelet(image):
    c_a, (c_h, c_v, c_d) = pywt.dwt2(image, matlab_dmey(), mode="symmetric")
    tiled = np.block([[c_a, c_h], [c_v, c_d]])
    return (tiled - tiled.min()) / (tiled.max() - tiled.min())


def _triple(seed, shape=(7, 8)):
    g = np.random.default_rng(seed)
    ir = g.integers(0, 256, shape, dtype=np.uint8)
    vis = g.integers(0, 256, shape, dtype=np.uint8)
    fused = ((ir.astype(int) * 2 + vis) // 3).astype(np.uint8)
    return ir, vis, fused


# --------------------------------------------------------------------------------------------------
# FMI against the loop reference
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    ("feature", "extract"),
    [
        ("none", lambda x: x),
        ("gradient", _loop_gradient_x),
        ("dct", _dct2_by_matrix),
        ("wavelet", _tiled_wavelet),
    ],
)
def test_fmi_matches_the_loop_transcription(feature, extract, seed):
    images = _triple(seed)
    unit = [x / 255.0 for x in images]
    expected = _loop_fmi(*(extract(x) for x in unit))
    assert fmi(*images, feature=feature) == pytest.approx(expected, abs=1e-10)


def test_fmi_with_quantised_windows_and_plateaus_matches_the_loop():
    # Few grey levels: many tied values, zero PDF entries and constant windows.
    g = np.random.default_rng(7)
    ir = (g.integers(0, 3, (7, 9)) * 120).astype(np.uint8)
    vis = (g.integers(0, 2, (7, 9)) * 255).astype(np.uint8)
    vis[:4, :4] = 60
    fused = np.maximum(ir, vis)
    fused[:3, :3] = 60
    expected = _loop_fmi(ir / 255.0, vis / 255.0, fused / 255.0)
    assert fmi(ir, vis, fused, feature="none") == pytest.approx(expected, abs=1e-10)


def test_fmi_window_5_matches_the_loop():
    images = _triple(3, shape=(7, 7))
    expected = _loop_fmi(*(x / 255.0 for x in images), window=5)
    assert fmi(*images, feature="none", window=5) == pytest.approx(expected, abs=1e-10)


def test_edge_fmi_matches_the_loop_on_edge_maps():
    ir, vis, fused = _triple(4, shape=(12, 13))
    maps = [_loop_sobel_edge(x / 255.0).astype(float) for x in (ir, vis, fused)]
    expected = _loop_fmi(*maps)
    assert fmi(ir, vis, fused, feature="edge") == pytest.approx(expected, abs=1e-12)
    assert fmi_pixel(ir, vis, fused) == fmi(ir, vis, fused, feature="edge")


def test_named_variants_are_the_matching_features():
    images = _triple(5, shape=(10, 11))
    assert fmi_dct(*images) == fmi(*images, feature="dct", window=3)
    assert fmi_wavelet(*images) == fmi(*images, feature="wavelet", window=3)


# --------------------------------------------------------------------------------------------------
# Hand-computable cases and properties
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("feature", FMI_FEATURES)
def test_identical_images_give_one(feature):
    image = _triple(6, shape=(12, 12))[0]
    assert fmi(image, image, image, feature=feature) == pytest.approx(1.0)


def test_constant_images_stay_finite():
    same = np.full((6, 6), 90, np.uint8)
    other = np.full((6, 6), 30, np.uint8)
    # Equal windows count 1; a constant window against a different one has a uniform PDF,
    # zero correlation and so zero mutual information.
    assert fmi(same, same, same, feature="none") == 1.0
    assert fmi(other, other, same, feature="none") == pytest.approx(0.0, abs=1e-12)
    assert fmi(same, other, same, feature="none") == pytest.approx(0.5, abs=1e-12)
    for feature in FMI_FEATURES:
        value = fmi(other, same, same, feature=feature)
        assert np.isfinite(value)
        assert 0.0 <= value <= 1.0


def test_fmi_is_symmetric_in_the_sources_and_bounded():
    ir, vis, fused = _triple(8, shape=(16, 18))
    for feature in ("none", "dct", "edge"):
        forward = fmi(ir, vis, fused, feature=feature)
        assert fmi(vis, ir, fused, feature=feature) == pytest.approx(forward, abs=1e-14)
        assert 0.0 <= forward <= 1.0


def test_fused_equal_to_one_source_scores_higher_than_noise():
    ir, vis, _ = _triple(9, shape=(16, 16))
    noise = np.random.default_rng(10).integers(0, 256, ir.shape, dtype=np.uint8)
    assert fmi(ir, vis, ir, feature="none") > fmi(ir, vis, noise, feature="none")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"feature": "sobel"}, "feature must be one of"),
        ({"window": 4}, "odd integer"),
        ({"window": 1}, "odd integer"),
        ({"window": 3.0}, "odd integer"),
        ({"window": 9}, "at least 9 x 9"),
    ],
)
def test_bad_options_are_clear_errors(kwargs, message):
    images = _triple(11, shape=(6, 8))
    with pytest.raises(ValueError, match=message):
        fmi(*images, **kwargs)


def test_bad_images_are_clear_errors_naming_the_argument():
    ir, vis, fused = _triple(12)
    with pytest.raises(ValueError, match="infrared and fused"):
        fmi(ir, vis, fused[:, :-1])
    with pytest.raises(ValueError, match="visible"):
        fmi(ir, np.full(ir.shape, np.nan), fused)
    with pytest.raises(ValueError, match="fused is empty"):
        fmi(ir, vis, fused[:0])


# --------------------------------------------------------------------------------------------------
# MATLAB edge(I)
# --------------------------------------------------------------------------------------------------


def test_vertical_step_gives_a_one_pixel_line_on_the_first_bright_column():
    # Columns 0-2 dark, 3-9 bright. |bx| = 0.5 on columns 2 and 3, so b = 0.25 there and 0
    # elsewhere; cutoff = 4 * mean(b) = 4 * 0.25 * 2 / 10 = 0.2 < 0.25. Thinning keeps column 3:
    # b[2] <= b[3] > b[4], while column 2 fails b[2] > b[3].
    image = np.zeros((6, 10))
    image[:, 3:] = 1.0
    expected = np.zeros((6, 10), dtype=bool)
    expected[:, 3] = True
    np.testing.assert_array_equal(sobel_edge(image), expected)
    # Transposed: a horizontal step is marked on the first bright row.
    np.testing.assert_array_equal(sobel_edge(image.T), expected.T)


def test_step_at_the_automatic_threshold_is_not_an_edge():
    # Eight columns: cutoff = 4 * 0.25 * 2 / 8 = 0.25, and b > cutoff is strict.
    image = np.zeros((5, 8))
    image[:, 3:] = 1.0
    assert not sobel_edge(image).any()


def test_constant_image_has_no_edges():
    assert not sobel_edge(np.full((5, 7), 0.3)).any()


def test_sobel_edge_matches_the_pixel_loop_on_random_images():
    g = np.random.default_rng(13)
    for shape in ((9, 12), (1, 6), (5, 1)):
        image = np.round(g.random(shape) * 255) / 255
        np.testing.assert_array_equal(sobel_edge(image), _loop_sobel_edge(image))


# --------------------------------------------------------------------------------------------------
# MATLAB's 102-tap discrete Meyer filter (FMI_w)
# --------------------------------------------------------------------------------------------------


def _meyer_two_scale_filter(n: int) -> float:
    """h[n] = (1 / pi) int_0^pi sqrt(2) Phi(2 w) cos(n w) dw, Phi the Meyer scaling spectrum."""
    from scipy.integrate import quad

    def meyeraux(x):
        x = min(max(x, 0.0), 1.0)
        return x**4 * (35 - 84 * x + 70 * x**2 - 20 * x**3)

    def phi_hat(w):  # |w| in [0, 2 pi]: 1 up to 2 pi / 3, a cosine roll-off to 0 at 4 pi / 3
        if w <= 2 * np.pi / 3:
            return 1.0
        return np.cos(np.pi / 2 * meyeraux(3 * w / (2 * np.pi) - 1)) if w < 4 * np.pi / 3 else 0.0

    def integrand(w):
        return np.sqrt(2) * phi_hat(2 * w) * np.cos(n * w)

    flat, _ = quad(integrand, 0, np.pi / 3, limit=200)
    roll, _ = quad(integrand, np.pi / 3, 2 * np.pi / 3, limit=200)
    return (flat + roll) / np.pi


def test_matlab_dmey_has_102_orthonormal_taps_summing_to_sqrt2():
    wavelet = matlab_dmey()
    taps = np.array(wavelet.rec_lo)
    assert wavelet.dec_len == wavelet.rec_len == 102  # PyWavelets' own 'dmey' has 62
    assert wavelet.orthogonal
    assert taps[-1] == 0.0
    np.testing.assert_array_equal(taps[:101], taps[100::-1])  # symmetric about tap 50
    assert taps.sum() == pytest.approx(np.sqrt(2), abs=1e-14)
    # Orthonormal up to the FIR truncation: unit energy, orthogonal to its even shifts.
    assert np.sum(taps * taps) == pytest.approx(1.0, abs=1e-5)
    for shift in range(2, 102, 2):
        assert abs(np.sum(taps[:-shift] * taps[shift:])) < 1e-5
    # The four filters form an orthogonal bank (as MATLAB's wfilters): reversal and QMF.
    np.testing.assert_array_equal(wavelet.dec_lo, taps[::-1])
    np.testing.assert_allclose(wavelet.rec_hi, [(-1) ** k * t for k, t in enumerate(taps[::-1])])
    signal = np.random.default_rng(0).random(300)
    restored = pywt.idwt(*pywt.dwt(signal, wavelet, mode="symmetric"), wavelet, mode="symmetric")
    np.testing.assert_allclose(restored, signal, atol=1e-4)


def test_matlab_dmey_is_the_meyer_two_scale_filter_from_meyeraux():
    taps = np.array(matlab_dmey().rec_lo[:101])
    derived = np.array([_meyer_two_scale_filter(n) for n in range(-50, 51)])
    np.testing.assert_allclose(taps, derived, rtol=0, atol=1e-6)
    truncated = np.array(pywt.Wavelet("dmey").rec_lo[:61])
    assert np.abs(truncated - derived[20:81]).max() > 1e-4  # PyWavelets' 62 taps are not it


def test_fmi_wavelet_tiles_the_102_tap_sub_bands():
    image = np.random.default_rng(1).random((40, 50))
    c_a, _ = pywt.dwt2(image, matlab_dmey(), mode="symmetric")
    assert c_a.shape == ((40 + 101) // 2, (50 + 101) // 2)  # floor((n + taps - 1) / 2)
