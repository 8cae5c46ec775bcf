"""Guided filter and guided filtering fusion against plain-loop references."""

import numpy as np
import pytest

from napari_resfuse.baselines import gff, guided_filter
from napari_resfuse.baselines.gff import _weight_maps


def _window_mean_truncated(image, r):
    """Mean over the (2r+1)^2 window cut at the border (He's boxfilter(.)/N)."""
    h, w = image.shape
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            out[y, x] = image[max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1].mean()
    return out


def _guided_filter_loop(guide, src, r, eps):
    mean_i = _window_mean_truncated(guide, r)
    mean_p = _window_mean_truncated(src, r)
    cov = _window_mean_truncated(guide * src, r) - mean_i * mean_p
    var = _window_mean_truncated(guide * guide, r) - mean_i**2
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _window_mean_truncated(a, r) * guide + _window_mean_truncated(b, r)


def _correlate_replicate(image, kernel):
    r = kernel.shape[0] // 2
    padded = np.pad(image, r, mode="edge")
    out = np.zeros(image.shape)
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            out[y, x] = np.sum(padded[y : y + 2 * r + 1, x : x + 2 * r + 1] * kernel)
    return out


def _gff_loop(ir, vis, r1, eps1, r2, eps2, size, sal_r, sal_sigma):
    lap = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=float)
    t = np.arange(-sal_r, sal_r + 1)
    gauss = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sal_sigma**2))
    gauss /= gauss.sum()
    sal = [_correlate_replicate(np.abs(_correlate_replicate(i, lap)), gauss) for i in (ir, vis)]
    p_ir = (sal[0] >= sal[1]).astype(float)
    p = (p_ir, 1 - p_ir)
    fused = np.zeros(ir.shape)
    weights = {}
    for key, r, eps in (("b", r1, eps1), ("d", r2, eps2)):
        w = [
            np.clip(_guided_filter_loop(i, pk, r, eps), 0, 1) + 1e-12
            for i, pk in zip((ir, vis), p, strict=True)
        ]
        weights[key] = [wk / (w[0] + w[1]) for wk in w]
    box = np.ones((size, size)) / size**2
    for k, image in enumerate((ir, vis)):
        base = _correlate_replicate(image, box)
        fused += weights["b"][k] * base + weights["d"][k] * (image - base)
    return fused


@pytest.mark.parametrize(
    ("shape", "r", "eps"), [((7, 9), 2, 0.01), ((10, 6), 1, 1e-6), ((5, 5), 4, 0.3)]
)
def test_guided_filter_matches_a_loop(shape, r, eps):
    rng = np.random.default_rng(20)
    guide, src = rng.random(shape), rng.random(shape)
    np.testing.assert_allclose(
        guided_filter(guide, src, r, eps), _guided_filter_loop(guide, src, r, eps), atol=1e-10
    )


def test_guided_filter_closed_forms():
    rng = np.random.default_rng(21)
    image = rng.random((15, 17))
    # A constant input stays constant; the image guiding itself with eps = 0 is kept exactly.
    np.testing.assert_allclose(guided_filter(image, np.full_like(image, 0.7), 3, 0.1), 0.7)
    np.testing.assert_allclose(guided_filter(image, image, 2, 0.0), image, atol=1e-8)


def test_gff_matches_a_loop_reference_with_small_parameters():
    rng = np.random.default_rng(22)
    ir, vis = rng.random((12, 11)), rng.random((12, 11))
    params = {"r1": 3, "eps1": 0.3, "r2": 1, "eps2": 1e-6, "kernel_size": 5}
    got = gff(ir, vis, saliency_radius=2, saliency_sigma=1.5, **params)
    expected = _gff_loop(ir, vis, 3, 0.3, 1, 1e-6, 5, 2, 1.5)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_gff_default_parameters_are_the_papers():
    rng = np.random.default_rng(23)
    ir, vis = rng.random((20, 18)), rng.random((20, 18))
    explicit = gff(
        ir,
        vis,
        r1=45,
        eps1=0.3,
        r2=7,
        eps2=1e-6,
        kernel_size=31,
        saliency_radius=5,
        saliency_sigma=5.0,
    )
    np.testing.assert_array_equal(gff(ir, vis), explicit)


def test_gff_weights_are_in_range_and_sum_to_one():
    rng = np.random.default_rng(24)
    ir, vis = rng.random((40, 36)), rng.random((40, 36)) ** 3
    for pair in _weight_maps(ir, vis, (45, 0.3), (7, 1e-6), 5, 5.0):
        assert all(np.all((w >= 0) & (w <= 1)) for w in pair)
        np.testing.assert_allclose(pair[0] + pair[1], 1.0, atol=1e-12)


def test_gff_gives_ties_to_the_infrared_image():
    # Flat sources have equal (zero) saliency everywhere: the first source wins, as in the
    # authors' code.
    np.testing.assert_allclose(gff(np.full((20, 20), 0.9), np.full((20, 20), 0.1)), 0.9, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"r1": -1}, "r1"),
        ({"r2": 2.5}, "r2"),
        ({"eps1": -0.1}, "eps1"),
        ({"kernel_size": 30}, "kernel_size"),
        ({"saliency_sigma": 0}, "saliency_sigma"),
    ],
)
def test_gff_rejects_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gff(np.zeros((8, 8)), np.zeros((8, 8)), **kwargs)
