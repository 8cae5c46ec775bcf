"""WLS fusion (Ma et al. 2017): the pieces of the authors' code against independent references."""

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.linalg import spsolve

from napari_resfuse.baselines import wls
from napari_resfuse.baselines.wls import (
    _decompose,
    _gauss_filter,
    _rolling_guidance,
    _visual_saliency,
    _wls_detail,
)


def test_wls_detail_solves_the_codes_sparse_system():
    # Solve_Optimal.m: (2I + lam (A + A')) d = 2M + lam (A + A') b1, A = diag(1/(|mean7(b2)|+1e-6)).
    rng = np.random.default_rng(30)
    m, b1, b2 = (rng.normal(size=(9, 10)) * 0.05 for _ in range(3))
    lam = 0.01
    padded = np.pad(b2, 3, mode="edge")
    mean7 = np.array([[padded[y : y + 7, x : x + 7].mean() for x in range(10)] for y in range(9)])
    a = sparse.diags((1.0 / (np.abs(mean7) + 1e-6)).ravel())
    eye = sparse.identity(90)
    lhs = (2 * eye + lam * (a + a.T)).tocsc()
    rhs = 2 * m.ravel() + lam * (a + a.T) @ b1.ravel()
    expected = spsolve(lhs, rhs).reshape(9, 10)
    np.testing.assert_allclose(_wls_detail(m, b1, b2, lam, 7), expected, rtol=1e-10, atol=1e-14)


def test_visual_saliency_matches_a_histogram_loop():
    rng = np.random.default_rng(31)
    image = rng.integers(0, 256, (6, 7)) / 255.0
    grey = np.round(image * 255).astype(int)
    raw = np.array(
        [[sum(abs(int(g) - int(q)) for q in grey.ravel()) for g in row] for row in grey], float
    )
    expected = (raw - raw.min()) / (raw.max() - raw.min())
    saliency = _visual_saliency(image)
    np.testing.assert_allclose(saliency, expected, atol=1e-12)
    assert saliency.min() == 0.0 and saliency.max() == 1.0


def test_visual_saliency_of_a_constant_image_is_zero():
    np.testing.assert_array_equal(_visual_saliency(np.full((5, 5), 0.4)), 0.0)


def test_gauss_filter_uses_a_normalised_window_of_radius_round_3_sigma():
    impulse = np.zeros((31, 31))
    impulse[15, 15] = 1.0
    response = _gauss_filter(impulse, 2.0)
    support = np.argwhere(response > 0)
    assert support.min() == 15 - 6 and support.max() == 15 + 6  # 13 x 13 window for sigma 2
    assert response.sum() == pytest.approx(1.0)
    t = np.arange(-6, 7)
    kernel = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / 8.0)
    np.testing.assert_allclose(response[9:22, 9:22], kernel / kernel.sum(), atol=1e-15)


def test_rolling_guidance_keeps_a_constant_image():
    np.testing.assert_allclose(_rolling_guidance(np.full((20, 20), 0.3), 4.0, 0.05, 4), 0.3)


def test_decomposition_telescopes_back_to_the_image():
    image = np.random.default_rng(32).random((40, 44))
    details, base = _decompose(image, 4, 2.0, 0.05, 4)
    assert len(details) == 4
    np.testing.assert_allclose(sum(details) + base, image, atol=1e-12)


def test_wls_default_parameters_are_the_published_codes():
    rng = np.random.default_rng(33)
    ir, vis = rng.random((24, 20)), rng.random((24, 20))
    explicit = wls(
        ir,
        vis,
        levels=4,
        sigma_s=2.0,
        sigma_r=0.05,
        iterations=4,
        sigma_map=2.0,
        lam=0.01,
        wls_window=7,
    )
    np.testing.assert_array_equal(wls(ir, vis), explicit)


def test_wls_base_weights_follow_the_saliency():
    # Two flat images of different level: no details, the base mix is 0.5 +- 0.5 (V1 - V2) with
    # both saliency maps 0, i.e. the plain average.
    fused = wls(np.full((20, 20), 0.8), np.full((20, 20), 0.2))
    np.testing.assert_allclose(fused, 0.5, atol=1e-6)


def test_wls_is_not_symmetric_in_its_sources():
    # The code treats the visible image as the target of the WLS step: swapping changes it.
    rng = np.random.default_rng(34)
    ir, vis = rng.random((30, 30)), rng.random((30, 30))
    assert np.max(np.abs(wls(ir, vis) - wls(vis, ir))) > 1e-3


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"levels": 0}, "levels"),
        ({"iterations": 1.5}, "iterations"),
        ({"sigma_r": 0}, "sigma_r"),
        ({"lam": -1}, "lam"),
        ({"wls_window": 6}, "wls_window"),
        ({"sigma_map": np.inf}, "sigma_map"),
    ],
)
def test_wls_rejects_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        wls(np.zeros((8, 8)), np.zeros((8, 8)), **kwargs)
