"""register_landmarks: exact fits on noise-free points, residuals, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from napari_resfuse.register import (
    MIN_POINTS,
    MODELS,
    Registration,
    RegistrationError,
    register_landmarks,
)

ROT = np.deg2rad(7.0)
# Known infrared → visible transforms (row, col), one per model.
FORWARD = {
    "translation": np.array([[1.0, 0, 12.5], [0, 1, -7.25], [0, 0, 1]]),
    "similarity": np.array(
        [
            [3 * np.cos(ROT), -3 * np.sin(ROT), 20.0],
            [3 * np.sin(ROT), 3 * np.cos(ROT), -15.0],
            [0, 0, 1],
        ]
    ),
    "affine": np.array([[2.5, 0.2, 10.0], [-0.15, 2.7, 30.0], [0, 0, 1]]),
    "projective": np.array([[2.5, 0.2, 10.0], [-0.15, 2.7, 30.0], [2e-4, -1e-4, 1]]),
}


def _map(matrix, points):
    homo = np.c_[points, np.ones(len(points))] @ matrix.T
    return homo[:, :2] / homo[:, 2:3]


def _points(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 200, size=(n, 2))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("extra", [0, 6])
def test_noise_free_points_are_fitted_exactly(model, extra):
    ir = _points(MIN_POINTS[model] + extra)
    vis = _map(FORWARD[model], ir)
    reg = register_landmarks(ir, vis, model=model)
    expected = np.linalg.inv(FORWARD[model])
    np.testing.assert_allclose(reg.matrix, expected / expected[2, 2], atol=1e-9)
    assert reg.model == model and reg.method == "landmarks"
    assert reg.residuals.shape == (len(ir),)
    assert reg.rms < 1e-9
    np.testing.assert_allclose(reg.to_infrared(vis), ir, atol=1e-8)
    np.testing.assert_allclose(reg.to_visible(ir), vis, atol=1e-8)


def test_similarity_reports_scale_and_rotation():
    ir = _points(5)
    reg = register_landmarks(ir, _map(FORWARD["similarity"], ir), model="similarity")
    assert reg.scale == pytest.approx(1 / 3)
    assert reg.rotation == pytest.approx(7.0)


def test_residuals_are_distances_in_visible_pixels():
    # Translation by the mean offset (5, 6): each visible point is 1 px from its prediction.
    ir = [[0.0, 0.0], [10.0, 10.0]]
    vis = [[5.0, 5.0], [15.0, 17.0]]
    reg = register_landmarks(ir, vis, model="translation")
    np.testing.assert_allclose(reg.to_visible(ir), [[5, 6], [15, 16]])
    np.testing.assert_allclose(reg.residuals, [1.0, 1.0])
    assert reg.rms == pytest.approx(1.0)


def test_least_squares_over_more_points_than_needed():
    ir = _points(20, seed=3)
    vis = _map(FORWARD["affine"], ir)
    noisy = vis + np.random.default_rng(4).normal(0, 0.5, vis.shape)
    reg = register_landmarks(ir, noisy, model="affine")
    assert 0.2 < reg.rms < 0.8
    # The fit is the least-squares one: moving it raises the sum of squared residuals.
    base = (reg.residuals**2).sum()
    for delta in (np.array([0.1, 0]), np.array([0, 0.1])):
        moved = reg.to_visible(ir) + delta
        assert ((moved - noisy) ** 2).sum() > base


@pytest.mark.parametrize("model", MODELS)
def test_too_few_points_are_refused(model):
    n = MIN_POINTS[model] - 1
    ir = _points(max(n, 0))
    with pytest.raises((RegistrationError, ValueError), match=f"at least {MIN_POINTS[model]}"):
        register_landmarks(ir, ir + 1, model=model)


def test_collinear_points_are_refused():
    line = np.array([[0.0, 0.0], [10.0, 10.0], [20.0, 20.0], [35.0, 35.0]])
    with pytest.raises(RegistrationError, match="collinear"):
        register_landmarks(line, line * 2, model="affine")
    square = np.array([[0.0, 0.0], [0.0, 50.0], [50.0, 50.0], [50.0, 0.0]])
    with pytest.raises(RegistrationError, match=r"visible points.*collinear"):
        register_landmarks(square, line, model="affine")
    three_on_a_line = np.array([[0.0, 0.0], [0.0, 25.0], [0.0, 50.0], [50.0, 0.0]])
    with pytest.raises(RegistrationError, match=r"points \[0, 1, 2\] are collinear"):
        register_landmarks(three_on_a_line, three_on_a_line, model="projective")
    # The same layout is fine for an affine fit (not all on one line).
    register_landmarks(three_on_a_line, three_on_a_line + 3, model="affine")


def test_similarity_needs_two_distinct_points():
    same = np.array([[5.0, 5.0], [5.0, 5.0]])
    with pytest.raises(RegistrationError, match="2 distinct points"):
        register_landmarks(same, same, model="similarity")


def test_bad_point_arrays_are_refused():
    pts = _points(4)
    with pytest.raises(ValueError, match="4 infrared points but 3 visible points"):
        register_landmarks(pts, pts[:3])
    bad = pts.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"visible points has NaN.*\[2\]"):
        register_landmarks(pts, bad)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        register_landmarks(np.zeros((4, 3)), pts)
    with pytest.raises(ValueError, match="unknown model"):
        register_landmarks(pts, pts, model="rigid-ish")


def test_inputs_are_not_modified():
    ir = _points(6)
    vis = _map(FORWARD["projective"], ir)
    ir_copy, vis_copy = ir.copy(), vis.copy()
    reg = register_landmarks(ir, vis, model="projective")
    np.testing.assert_array_equal(ir, ir_copy)
    np.testing.assert_array_equal(vis, vis_copy)
    np.testing.assert_array_equal(reg.landmarks[0], ir)
    with pytest.raises(ValueError):
        reg.landmarks[0][0, 0] = 1.0  # read-only copies


def test_shapes_can_be_given_later():
    ir = _points(4)
    reg = register_landmarks(ir, _map(FORWARD["affine"], ir))
    assert reg.infrared_shape is None
    with pytest.raises(RegistrationError, match="no image shapes"):
        reg.warp(np.zeros((40, 50)))
    bound = reg.with_shapes((40, 50), (300, 400))
    assert isinstance(bound, Registration)
    assert bound.warp(np.ones((40, 50))).shape == (300, 400)
    with pytest.raises(RegistrationError, match="40 x 50 px, not 41 x 50 px"):
        bound.with_shapes((41, 50), (300, 400))
