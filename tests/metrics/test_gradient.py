"""Tests for the gradient-based metrics Q^{AB/F} and N^{AB/F} (ports of the paper's MATLAB code).

The plain-loop references below are line-by-line readings of ``analysis_Qabf.m`` and
``analysis_nabf.m`` (with ``sobel_fn.m`` and ``per_extn_im_fn.m``) in Python scalars, on tiny
images. Their sums run in the order MATLAB evaluates them, because both metrics branch on exact
zeros and the TNO values reproduce only with MATLAB's rounding (see the module's docstrings).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_resfuse.metrics.gradient import (
    _nabf_gradients,
    _qabf_strength_orientation,
    nabf,
    qabf,
)

# analysis_Qabf.m
QABF_H1 = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
QABF_H3 = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
TG, KG, DG = 0.9994, -15.0, 0.5
TA, KA, DA = 0.9879, -22.0, 0.8

# analysis_nabf.m / sobel_fn.m
VTEMP = [[-1 / 8, 0.0, 1 / 8], [-2 / 8, 0.0, 2 / 8], [-1 / 8, 0.0, 1 / 8]]
HTEMP = [[-1 / 8, -2 / 8, -1 / 8], [0.0, 0.0, 0.0], [1 / 8, 2 / 8, 1 / 8]]


# --------------------------------------------------------------------------------------------
# Plain-loop references
# --------------------------------------------------------------------------------------------


def _conv2_same_loop(x, h):
    """MATLAB conv2(x, h, 'same') for 3 x 3 h: out(i,j) = sum h(k,l) x(i+1-k, j+1-l), zeros
    outside, kernel visited in column-major order (l outer, k inner)."""
    rows, cols = len(x), len(x[0])
    out = [[0.0] * cols for _ in range(rows)]
    for i in range(rows):
        for j in range(cols):
            total = 0.0
            for col in range(3):
                for row in range(3):
                    ii, jj = i + 1 - row, j + 1 - col
                    if 0 <= ii < rows and 0 <= jj < cols:
                        total += h[row][col] * x[ii][jj]
            out[i][j] = total
    return out


def _qabf_loop(a, b, f):
    """analysis_Qabf.m with Python scalars; a, b, f are lists of lists in [0, 1]."""

    def strength_orientation(x):
        sx = _conv2_same_loop(x, QABF_H3)
        sy = _conv2_same_loop(x, QABF_H1)
        g = [
            [math.sqrt(p * p + q * q) for p, q in zip(rx, ry, strict=True)]
            for rx, ry in zip(sx, sy, strict=True)
        ]
        alpha = [
            [math.pi / 2 if p == 0 else math.atan(q / p) for p, q in zip(rx, ry, strict=True)]
            for rx, ry in zip(sx, sy, strict=True)
        ]
        return g, alpha

    ga, aa = strength_orientation(a)
    gb, ab = strength_orientation(b)
    gf, af = strength_orientation(f)

    def q(gx, ax, i, j):
        if gx[i][j] > gf[i][j]:
            rel_g = gf[i][j] / gx[i][j]
        elif gx[i][j] == gf[i][j]:
            rel_g = gf[i][j]
        else:
            rel_g = gx[i][j] / gf[i][j]
        rel_a = 1 - abs(ax[i][j] - af[i][j]) / (math.pi / 2)
        qg = TG / (1 + math.exp(KG * (rel_g - DG)))
        qa = TA / (1 + math.exp(KA * (rel_a - DA)))
        return qg * qa

    numerator = denominator = 0.0
    for i in range(len(a)):
        for j in range(len(a[0])):
            numerator += q(ga, aa, i, j) * ga[i][j] + q(gb, ab, i, j) * gb[i][j]
            denominator += ga[i][j] + gb[i][j]
    return numerator / denominator


def _per_extn_loop(x):
    """per_extn_im_fn.m with wsize = 3, index by index (1-based comments)."""
    p, q = len(x), len(x[0])
    ext = [[0.0] * (q + 2) for _ in range(p + 2)]
    for i in range(p):
        for j in range(q):
            ext[i + 1][j + 1] = x[i][j]
    ext[0] = list(ext[2])  # xout_ext(1,:) = xout_ext(3,:)
    ext[p + 1] = list(ext[p - 1])  # xout_ext(p+2,:) = xout_ext(p,:)
    for row in ext:
        row[0] = row[2]  # xout_ext(:,1) = xout_ext(:,3)
        row[q + 1] = row[q - 1]  # xout_ext(:,q+2) = xout_ext(:,q)
    return ext


def _sobel_loop(x):
    """sobel_fn.m: gv, gh = sum(sum(window .* kernel)) (column sums, then across)."""
    ext = _per_extn_loop(x)
    p, q = len(x), len(x[0])
    gv = [[0.0] * q for _ in range(p)]
    gh = [[0.0] * q for _ in range(p)]
    for i in range(p):
        for j in range(q):
            for kernel, out in ((VTEMP, gv), (HTEMP, gh)):
                column_sums = []
                for c in range(3):
                    s = ext[i][j + c] * kernel[0][c]
                    s = s + ext[i + 1][j + c] * kernel[1][c]
                    s = s + ext[i + 2][j + c] * kernel[2][c]
                    column_sums.append(s)
                out[i][j] = (column_sums[0] + column_sums[1]) + column_sums[2]
    return gv, gh


def _nabf_loop(a, b, f, td=2.0):
    """analysis_nabf.m (Kumar's NABF) with Python scalars; a, b, f lists of lists in [0, 1]."""
    wt_min, lg = 0.001, 1.5
    nrg, kg, sigmag = 0.9999, 19.0, 0.5
    nra, ka, sigmaa = 0.9995, 22.0, 0.5

    def strength_orientation(x):
        gv, gh = _sobel_loop(x)
        g = [
            [math.sqrt(h * h + v * v) for v, h in zip(rv, rh, strict=True)]
            for rv, rh in zip(gv, gh, strict=True)
        ]
        alpha = []
        for rv, rh in zip(gv, gh, strict=True):
            row = []
            for v, h in zip(rv, rh, strict=True):
                if v == 0 and h == 0:
                    row.append(0.0)
                elif h == 0:
                    row.append(math.copysign(math.pi / 2, v) * math.copysign(1.0, h))
                else:
                    row.append(math.atan(v / h))
            alpha.append(row)
        return g, alpha

    ga, aa = strength_orientation(a)
    gb, ab = strength_orientation(b)
    gf, af = strength_orientation(f)

    def q(gx, ax, i, j):
        if gx[i][j] == 0 or gf[i][j] == 0:
            rel_g = 0.0
        elif gx[i][j] > gf[i][j]:
            rel_g = gf[i][j] / gx[i][j]
        else:
            rel_g = gx[i][j] / gf[i][j]
        rel_a = abs(abs(ax[i][j] - af[i][j]) - math.pi / 2) * 2 / math.pi
        qg = nrg / (1 + math.exp(-kg * (rel_g - sigmag)))
        qa = nra / (1 + math.exp(-ka * (rel_a - sigmaa)))
        return math.sqrt(qg * qa)

    def weight(g):
        return g**lg if g >= td else wt_min

    numerator = weight_sum = 0.0
    for i in range(len(a)):
        for j in range(len(a[0])):
            wa, wb = weight(ga[i][j]), weight(gb[i][j])
            weight_sum += wa + wb
            if gf[i][j] > ga[i][j] and gf[i][j] > gb[i][j]:
                numerator += (1 - q(ga, aa, i, j)) * wa + (1 - q(gb, ab, i, j)) * wb
    return numerator / weight_sum


def _unit(image_u8):
    """uint8 -> nested lists of k / 255 (MATLAB im2double)."""
    return (np.asarray(image_u8, dtype=np.float64) / 255.0).tolist()


def _random_triple(seed, shape):
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(0, 256, size=shape, dtype=np.uint8) for _ in range(3))


# Patches whose centre has a horizontal response that is 0 in exact arithmetic but whose rounding
# depends on the summation order (found by a search over random 3 x 3 uint8 patches).
# conv2's column-major order gives exactly 0 at the centre of PATCH_ZERO (row-major gives 1e-16),
# and -1.1e-16 at the centre of PATCH_NEGATIVE (with a positive vertical response).
PATCH_ZERO = np.array([[185, 136, 27], [107, 118, 195], [60, 20, 42]], dtype=np.uint8)
PATCH_NEGATIVE = np.array([[153, 33, 71], [47, 252, 62], [99, 183, 151]], dtype=np.uint8)
# sobel_fn's order (column sums, then across) gives exactly 0 for gv at the centre; a row-major
# running sum gives -1.0e-17.
PATCH_SOBEL_ZERO = np.array([[207, 21, 45], [60, 46, 247], [222, 149, 10]], dtype=np.uint8)


# --------------------------------------------------------------------------------------------
# Q^{AB/F}
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "shape"), [(0, (6, 5)), (1, (4, 7)), (2, (1, 5)), (3, (2, 2))])
def test_qabf_matches_plain_loop_port(seed, shape):
    a, b, f = _random_triple(seed, shape)
    expected = _qabf_loop(_unit(a), _unit(b), _unit(f))
    assert qabf(a, b, f) == pytest.approx(expected, abs=1e-12)


def test_qabf_matches_plain_loop_on_order_sensitive_patches():
    a = np.tile(PATCH_ZERO, (2, 2))
    b = np.tile(PATCH_NEGATIVE, (2, 2))
    f = np.tile(PATCH_SOBEL_ZERO, (2, 2))
    expected = _qabf_loop(_unit(a), _unit(b), _unit(f))
    assert qabf(a, b, f) == pytest.approx(expected, abs=1e-12)
    assert qabf(f, a, b) == pytest.approx(_qabf_loop(_unit(f), _unit(a), _unit(b)), abs=1e-12)


def test_qabf_orientation_follows_matlab_rounding():
    # Exact zero -> the code's pi/2 branch; -1.1e-16 with a positive y response -> atan gives
    # -pi/2. Exact arithmetic would give pi/2 for both.
    _, alpha_zero = _qabf_strength_orientation(PATCH_ZERO / 255.0)
    _, alpha_negative = _qabf_strength_orientation(PATCH_NEGATIVE / 255.0)
    assert alpha_zero[1, 1] == np.pi / 2
    assert alpha_negative[1, 1] == pytest.approx(-np.pi / 2, abs=1e-12)
    # The patches discriminate: the other natural order rounds the other way.
    centre = [[PATCH_ZERO[2 - k, 2 - l] / 255.0 for l in range(3)] for k in range(3)]
    row_major = 0.0
    for k in range(3):
        for l in range(3):
            row_major += QABF_H3[k][l] * centre[k][l]
    assert row_major != 0.0


def test_qabf_identical_images_hand_value_shows_equal_strength_branch():
    # x = [0, 64/255]: conv2 'same' gives s_x = [-2 * 64/255, 0], s_y = [0, 0], so
    # g = [128/255, 0] and alpha = [0, pi/2] (atan(0 / negative) = 0; s_x = 0 -> pi/2).
    # With A = B = F, g_A == g_F everywhere, so G^{AF} = g_F itself (not 1) and A^{AF} = 1:
    # Qabf = Qg(128/255) * Qa(1), the g-weighted mean over the only pixel with g > 0.
    x = np.array([[0, 64]], dtype=np.uint8)
    g = 128 / 255
    expected = TG / (1 + math.exp(KG * (g - DG))) * TA / (1 + math.exp(KA * (1 - DA)))
    assert qabf(x, x, x) == pytest.approx(expected, rel=1e-12)
    # About half of the "perfect" Qg(1) * Qa(1) that a ratio of 1 would give.
    perfect = TG / (1 + math.exp(KG * (1 - DG))) * TA / (1 + math.exp(KA * (1 - DA)))
    assert qabf(x, x, x) < 0.55 * perfect


def test_qabf_symmetric_in_sources():
    a, b, f = _random_triple(4, (9, 8))
    assert qabf(a, b, f) == pytest.approx(qabf(b, a, f), abs=1e-14)


def test_qabf_invariant_under_half_turn_with_exact_values():
    # Float images holding multiples of 1/4: every sum is exact.
    # A half turn negates both responses (the kernels are odd), so atan(s_y / s_x) and the
    # s_x == 0 branch are unchanged. A single flip is *not* a symmetry: it negates alpha except
    # where the pi/2 branch fires, so the value changes.
    rng = np.random.default_rng(5)
    a, b, f = (rng.integers(0, 5, size=(7, 6)) / 4.0 for _ in range(3))
    value = qabf(a, b, f)
    assert qabf(a[::-1, ::-1], b[::-1, ::-1], f[::-1, ::-1]) == pytest.approx(value, abs=1e-14)
    assert qabf(a[:, ::-1], b[:, ::-1], f[:, ::-1]) != pytest.approx(value, abs=1e-6)


def test_qabf_bounds_and_ordering():
    a, b, f = _random_triple(6, (16, 16))
    average = ((a.astype(np.uint16) + b) // 2).astype(np.uint8)
    for fused in (f, average, a, np.zeros_like(a)):
        assert 0.0 <= qabf(a, b, fused) < 1.0
    # Keeping the sources' edges beats a black image.
    assert qabf(a, b, average) > qabf(a, b, np.zeros_like(a))


def test_qabf_constant_images_are_finite():
    # Zero padding makes the border of a non-zero constant image an edge, so the value exists.
    c1 = np.full((5, 6), 100, dtype=np.uint8)
    c2 = np.full((5, 6), 200, dtype=np.uint8)
    value = qabf(c1, c2, c1)
    assert math.isfinite(value)
    assert 0.0 < value < 1.0


def test_qabf_undefined_when_both_sources_have_no_edges():
    zeros = np.zeros((4, 4), dtype=np.uint8)
    fused = np.full((4, 4), 9, dtype=np.uint8)
    with pytest.raises(ValueError, match="infrared and visible both have zero edge strength"):
        qabf(zeros, zeros, fused)
    # A single pixel has no neighbours, so it has no edge either.
    one = np.array([[7]], dtype=np.uint8)
    with pytest.raises(ValueError, match="zero edge strength"):
        qabf(one, one, one)


# --------------------------------------------------------------------------------------------
# N^{AB/F}
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "shape"), [(10, (6, 5)), (11, (4, 7)), (12, (2, 3)), (13, (1, 4))]
)
def test_nabf_matches_plain_loop_port(seed, shape):
    a, b, f = _random_triple(seed, shape)
    expected = _nabf_loop(_unit(a), _unit(b), _unit(f))
    assert nabf(a, b, f) == pytest.approx(expected, abs=1e-12)


def test_nabf_matches_plain_loop_on_order_sensitive_patches():
    a = np.tile(PATCH_SOBEL_ZERO, (2, 2))
    b = np.tile(PATCH_ZERO, (2, 2))
    f = np.tile(PATCH_NEGATIVE, (2, 2))
    for triple in ((a, b, f), (f, b, a), (b, f, a)):
        expected = _nabf_loop(*(_unit(x) for x in triple))
        assert nabf(*triple) == pytest.approx(expected, abs=1e-12)


def test_nabf_sobel_responses_follow_matlab_rounding():
    gv, _ = _nabf_gradients(PATCH_SOBEL_ZERO / 255.0)
    assert gv[1, 1] == 0.0
    # The patch discriminates: a row-major running sum does not cancel exactly.
    x = PATCH_SOBEL_ZERO / 255.0
    running = 0.0
    for i in range(3):
        for j in range(3):
            running += x[i, j] * VTEMP[i][j]
    assert running != 0.0


def test_per_extension_mirrors_without_repeating_the_border():
    x = np.arange(12, dtype=float).reshape(3, 4) / 11
    gv, gh = _nabf_gradients(x)
    # Mirror without repeating the edge (x(-1) = x(1)) makes the centred differences at the
    # borders zero in the direction across the border: the ramp's gv vanishes in the first and
    # last column, gh in the first and last row.
    assert np.all(gv[:, [0, -1]] == 0.0)
    assert np.all(gh[[0, -1], :] == 0.0)
    # Inside, the ramp's Sobel/8 responses are (1 + 2 + 1) / 8 times the centred difference:
    # 4/8 * 2/11 across columns, 4/8 * 8/11 across rows.
    assert gv[1, 1] == pytest.approx(1 / 11, abs=1e-15)
    assert gh[1, 1] == pytest.approx(4 / 11, abs=1e-15)


def test_nabf_zero_when_fused_equals_a_source():
    # Artefact pixels need g_F > g_A and g_F > g_B; with F = A (or B) there are none.
    a, b, _ = _random_triple(14, (8, 9))
    assert nabf(a, b, a) == 0.0
    assert nabf(a, b, b) == 0.0
    assert nabf(a, a, a) == 0.0


def test_nabf_hand_value_on_stripes():
    # A = B = 0 and F = columns [0, 0, 1, 1, 0, 0]. With the mirrored border, F's gv is
    # 4/8 * (x[j+1] - x[j-1]) = [0, .5, .5, -.5, -.5, 0] and gh = 0, so 4 of 6 columns are
    # artefact pixels (g_F > g_A = g_B = 0). There G = 0 (g_A = 0), alpha_A = 0 and
    # alpha_F = +-pi/2, so A = ||0 -+ pi/2| - pi/2| / (pi/2) = 0 and
    # Q = sqrt(Qg(0) * Qa(0)); all weights are w_min, so N = 4/6 * (1 - Q).
    stripes = np.tile(np.array([0, 0, 255, 255, 0, 0], dtype=np.uint8), (5, 1))
    zeros = np.zeros_like(stripes)
    q = math.sqrt(0.9999 / (1 + math.exp(19 * 0.5)) * 0.9995 / (1 + math.exp(22 * 0.5)))
    assert nabf(zeros, zeros, stripes) == pytest.approx(4 / 6 * (1 - q), rel=1e-12)


def test_nabf_weights_all_equal_the_minimum_on_unit_images():
    # The code's threshold Td = 2 is above every Sobel/8 strength of a [0, 1] image (each
    # response is at most 1/2), so every weight is w_min: the value is the unweighted one, and
    # the strength-weighted one (any threshold below the strengths) differs.
    a, b, f = _random_triple(17, (6, 6))
    unit = [_unit(x) for x in (a, b, f)]
    assert nabf(a, b, f) == pytest.approx(_nabf_loop(*unit, td=math.inf), abs=1e-12)
    assert nabf(a, b, f) != pytest.approx(_nabf_loop(*unit, td=0.0), abs=1e-4)


def test_nabf_symmetric_in_sources_and_bounded():
    a, b, f = _random_triple(15, (10, 7))
    value = nabf(a, b, f)
    assert value == pytest.approx(nabf(b, a, f), abs=1e-15)
    assert 0.0 <= value < 1.0


def test_nabf_invariant_under_flips_with_exact_values():
    rng = np.random.default_rng(16)
    a, b, f = (rng.integers(0, 5, size=(6, 7)) / 4.0 for _ in range(3))
    value = nabf(a, b, f)
    assert value > 0.0
    assert nabf(a[:, ::-1], b[:, ::-1], f[:, ::-1]) == pytest.approx(value, abs=1e-14)
    assert nabf(a[::-1], b[::-1], f[::-1]) == pytest.approx(value, abs=1e-14)


def test_nabf_finite_on_constant_and_tiny_images():
    const = np.full((5, 5), 80, dtype=np.uint8)
    assert nabf(const, const, const) == 0.0
    one = np.array([[3]], dtype=np.uint8)
    assert nabf(one, one, np.array([[200]], dtype=np.uint8)) == 0.0
    row = np.array([[0, 255, 0]], dtype=np.uint8)
    assert math.isfinite(nabf(row, row[:, ::-1].copy(), row))


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [qabf, nabf])
def test_shape_mismatch_names_both_arguments(metric):
    a = np.zeros((4, 5), dtype=np.uint8)
    b = np.zeros((5, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="infrared and visible"):
        metric(a, b, a)
    with pytest.raises(ValueError, match="infrared and fused"):
        metric(a, a, b)


@pytest.mark.parametrize("metric", [qabf, nabf])
def test_bad_inputs_name_the_argument(metric):
    good = np.arange(12, dtype=np.uint8).reshape(3, 4)
    nan = good.astype(float)
    nan[1, 1] = np.nan
    with pytest.raises(ValueError, match="fused"):
        metric(good, good, nan)
    with pytest.raises(ValueError, match="visible"):
        metric(good, np.zeros((0, 4)), good)
    with pytest.raises(ValueError, match="infrared"):
        metric(np.zeros((2, 3, 5)), good, good)
