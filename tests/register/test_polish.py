"""Stage 5 of the automatic estimate (``register._polish.polish``): the edge-orientation polish.

From a known warp's truth put a few pixels off (as mutual information leaves a coarse infrared),
the polish must come back to within half a visible pixel, for each model and for an infrared
finer or coarser than the visible image; an infrared shrunk for the working grid must end
closer to the truth after the fine stage (one Newton step on its own grid) than without it, and
that step must land on the maximum of a quadratic; its measure must be the normalised
correlation of the two orientation fields written out here independently; and it must leave a
matrix it cannot measure alone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from napari_resfuse.register import _polish
from napari_resfuse.register._search import _normalise

from . import _warps


def _off(true: np.ndarray, shift=(2.0, -1.5), angle=0.6, zoom=1.01) -> np.ndarray:
    """``true`` seen from a visible frame moved, turned and zoomed a little (visible px)."""
    a = math.radians(angle)
    wrong = np.eye(3)
    wrong[:2, :2] = zoom * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    wrong[:2, 2] = shift
    return true @ wrong


@pytest.fixture(scope="module")
def scene():
    return _warps.scene((360, 480), seed=5)


@pytest.fixture(scope="module")
def scene_large():
    return _warps.scene((540, 720), seed=5)


@pytest.mark.parametrize(
    ("model", "ratio", "tilt"),
    [
        ("translation", 1.0, (0.0, 0.0)),
        ("similarity", 4.0, (0.0, 0.0)),
        ("similarity", 0.4, (0.0, 0.0)),  # the infrared finer than the visible image
        ("affine", 3.0, (0.0, 0.0)),
        ("projective", 3.0, (2e-4, -1e-4)),
    ],
)
def test_a_start_a_few_px_off_comes_back_to_the_truth(scene, model, ratio, tilt):
    ir0, vis0 = scene
    ir, vis, true = _warps.warp_pair(
        ir0, vis0, ratio=ratio, rotation=0.0 if model == "translation" else 5.0,
        offset=(0.03, -0.04), infrared_side=0.8, tilt=tilt,
    )  # fmt: skip
    a, b = _normalise(ir), _normalise(vis)
    if model == "translation":
        start = _off(true, angle=0.0, zoom=1.0)
    else:
        start = _off(true)
    assert _warps.overlap_rms(true, start, ir.shape, vis.shape) > 1.5
    found, before, after = _polish.polish(a, b, start, model)
    assert after > before
    assert _warps.overlap_rms(true, found, ir.shape, vis.shape) <= 0.5


def _orientation(img, rim=0):
    """(g_c + i g_r)² / (|g|² + mean |g|²) with Sobel gradients, written out again; the mean
    is taken without the image's outer ``rim`` pixels."""
    gr = ndimage.sobel(img.astype(np.float64), 0, mode="nearest")
    gc = ndimage.sobel(img.astype(np.float64), 1, mode="nearest")
    mag2 = gr**2 + gc**2
    angle = np.arctan2(gr, gc)
    inner = mag2[rim : mag2.shape[0] - rim, rim : mag2.shape[1] - rim]
    return mag2 / (mag2 + inner.mean()) * np.exp(2j * angle)


def test_the_measure_is_the_normalised_correlation_of_the_orientation_fields(scene):
    # An infrared of 192 x 256 px (neither shrunk nor enlarged): the working grid is the
    # infrared's own, and the visible image (smoothed to the infrared's pixel,
    # sigma 0.5·√(k²−1)) is resampled there bilinearly.
    ir0, vis0 = scene
    ir, vis, true = _warps.warp_pair(ir0, vis0, ratio=1.3125, rotation=3.0, infrared_side=0.7)
    a, b = _normalise(ir).astype(np.float64), _normalise(vis).astype(np.float64)
    assert max(a.shape) == _polish.SIDE == _polish.MIN_SIDE
    _, before, _ = _polish.polish(a, b, true, "similarity")
    k = 1.0 / math.sqrt(abs(np.linalg.det(true[:2, :2])))  # visible px per infrared px
    smooth = ndimage.gaussian_filter(b, 0.5 * math.sqrt(k * k - 1.0))
    inv = np.linalg.inv(true)
    rr, cc = np.mgrid[0 : a.shape[0], 0 : a.shape[1]].astype(np.float64)
    homo = inv @ np.stack([rr.ravel(), cc.ravel(), np.ones(rr.size)])
    p = homo[:2] / homo[2]
    inside = (p[0] >= 0) & (p[0] <= b.shape[0] - 1) & (p[1] >= 0) & (p[1] <= b.shape[1] - 1)
    mask = ndimage.binary_erosion(inside.reshape(a.shape), iterations=3)
    seen = ndimage.map_coordinates(smooth, p, order=1, mode="nearest").reshape(a.shape)
    # The measure is taken over the overlap's box: crop both fields to it (plus a pixel).
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    box = (slice(rows[0] - 1, rows[-1] + 2), slice(cols[0] - 1, cols[-1] + 2))
    x = _orientation(a)[box][mask[box]]
    y = _orientation(seen[box], rim=1)[mask[box]]  # ε² over the box less its rim
    expected = np.sum(x * np.conj(y)).real / math.sqrt(np.sum(abs(x) ** 2) * np.sum(abs(y) ** 2))
    assert before == pytest.approx(expected, abs=1e-6)


def test_no_overlap_leaves_the_matrix_alone(scene):
    ir0, vis0 = scene
    ir, vis, true = _warps.warp_pair(ir0, vis0, ratio=2.0)
    far = true.copy()
    far[:2, 2] += 5000.0
    found, before, after = _polish.polish(_normalise(ir), _normalise(vis), far, "affine")
    assert found is far and before == after == 0.0


def test_an_infrared_shrunk_for_the_search_grid_is_finished_on_its_own_grid(scene_large):
    # A 243 x 324 px infrared is shrunk to 256 px for the first stage: the Newton step on its
    # own grid must bring the estimate closer to the truth than that stage alone.
    ir0, vis0 = scene_large
    ir, vis, true = _warps.warp_pair(
        ir0, vis0, ratio=2.0, rotation=4.0, offset=(0.03, -0.04), infrared_side=0.9
    )
    assert max(ir.shape) > _polish.SIDE
    a, b = _normalise(ir), _normalise(vis)
    start = _off(true)
    found, before, after = _polish.polish(a, b, start, "affine")
    fine = _warps.overlap_rms(true, found, ir.shape, vis.shape)
    newton = _polish._newton
    try:
        _polish._newton = lambda measure: (None, 0.0, 0.0)  # the first stage alone
        coarse, _, _ = _polish.polish(a, b, start, "affine")
    finally:
        _polish._newton = newton
    assert after > before
    assert fine < _warps.overlap_rms(true, coarse, ir.shape, vis.shape)
    assert fine <= 0.2


class _Quadratic:
    """A stand-in measure: ``C(x) = c - (x - top)ᵀ A (x - top)``, its maximum at ``top``."""

    def __init__(self, top, curvature, step=1.0):
        self.top, self.curvature = np.asarray(top, float), np.asarray(curvature, float)
        self.size, self.step, self.calls = len(top), step, 0

    def __call__(self, x):
        self.calls += 1
        d = np.asarray(x) - self.top
        return 0.9 - float(d @ self.curvature @ d)


def test_the_newton_step_lands_on_the_maximum_of_a_quadratic_measure():
    # Central differences are exact for a quadratic: one step reaches its maximum, with
    # 1 + 2p + p(p - 1)/2 evaluations for the model and one to confirm.
    rng = np.random.default_rng(3)
    q = rng.normal(size=(6, 6))
    measure = _Quadratic(rng.uniform(-0.8, 0.8, 6), q @ q.T + 6 * np.eye(6))
    x, before, after = _polish._newton(measure)
    assert np.allclose(x, measure.top, atol=1e-6)
    assert before == pytest.approx(measure(np.zeros(6)))
    assert after == pytest.approx(0.9)
    assert measure.calls == 1 + 12 + 15 + 1 + 1  # (+1: the check above)


def test_the_newton_step_refuses_a_saddle_and_a_far_maximum():
    saddle = _Quadratic([0.1, 0.2], [[1.0, 0.0], [0.0, -1.0]])
    assert _polish._newton(saddle)[0] is None
    far = _Quadratic([5.0, -4.0], np.eye(2))  # more than two working pixels away
    assert _polish._newton(far)[0] is None


@pytest.mark.parametrize("model", ["translation", "similarity", "affine", "projective"])
def test_the_gradient_is_the_measures_derivative(scene, model):
    """L-BFGS-B's gradient (automatic differentiation chained with the matrix's derivative)
    against central differences of the measure itself, away from its optimum."""
    ir0, vis0 = scene
    ir, vis, true = _warps.warp_pair(
        ir0, vis0, ratio=3.0, rotation=5.0, offset=(0.03, -0.04), tilt=(1e-4, -5e-5)
    )
    pyramids = (_polish._Pyramid(_normalise(ir)), _polish._Pyramid(_normalise(vis)))
    measure = _polish._Measure(pyramids, true, model, _polish.SIDE)
    x = np.random.default_rng(1).uniform(-1.5, 1.5, measure.size)
    value, gradient = measure.value_and_gradient(x)
    assert value == pytest.approx(measure(x), abs=1e-7)
    h = 0.002
    numeric = np.array(
        [(measure(x + h * e) - measure(x - h * e)) / (2 * h) for e in np.eye(measure.size)]
    )
    assert np.abs(numeric).max() > 1e-3  # away from the optimum: the test can fail
    assert np.abs(gradient - numeric).max() <= 0.02 * np.abs(numeric).max()


def test_the_homographys_derivative_is_the_refit_matrixs(scene):
    """The solved derivative of a homography's entries against central differences of the
    exact four-point refit (:func:`fit_points`)."""
    ir0, vis0 = scene
    ir, vis, true = _warps.warp_pair(ir0, vis0, ratio=3.0, rotation=5.0, tilt=(2e-4, -1e-4))
    pyramids = (_polish._Pyramid(_normalise(ir)), _polish._Pyramid(_normalise(vis)))
    measure = _polish._Measure(pyramids, true, "projective", _polish.SIDE)
    x = np.random.default_rng(2).uniform(-3.0, 3.0, 8)
    h = 1e-4
    numeric = np.stack(
        [
            (measure.transform(x + h * e) - measure.transform(x - h * e)).ravel() / (2 * h)
            for e in np.eye(8)
        ],
        axis=1,
    )
    assert np.abs(measure.jacobian(x)[:8]).max() > 0.0
    assert np.allclose(measure.jacobian(x), numeric, rtol=1e-5, atol=1e-9)


def test_the_polish_runs_torch_on_one_thread_and_gives_the_count_back(scene):
    import torch

    ir0, vis0 = scene
    ir, vis, true = _warps.warp_pair(ir0, vis0, ratio=2.0, rotation=3.0, infrared_side=0.7)
    seen = []
    measure_call = _polish._Measure.__call__

    def spy(self, x):
        seen.append(torch.get_num_threads())
        return measure_call(self, x)

    threads = torch.get_num_threads()
    _polish._Measure.__call__ = spy
    try:
        _polish.polish(_normalise(ir), _normalise(vis), true, "similarity")
    finally:
        _polish._Measure.__call__ = measure_call
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == threads
