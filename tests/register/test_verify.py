"""The independent edge check (``register._verify.edge_check``) behind every automatic estimate.

An estimate is accepted only where the two images' edge orientations agree best over all
translations; these tests put the truth, a shifted truth, a wrong scale and an unrelated pair
through it, and check that what :func:`estimate` returns as converged passes it.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_resfuse.register import _auto, _verify
from napari_resfuse.register._search import _normalise

from . import _warps


@pytest.fixture(scope="module")
def warped():
    ir0, vis0 = _warps.scene((240, 320), seed=2)
    ir, vis, true = _warps.warp_pair(ir0, vis0, ratio=2, rotation=6, offset=(0.05, -0.05))
    return _normalise(ir), _normalise(vis), true


def test_the_truth_passes_with_the_peak_on_it(warped):
    ir, vis, true = warped
    check = _verify.edge_check(ir, vis, true)
    assert check.passed
    assert check.significance >= _verify.MIN_PEAK
    assert max(abs(v) for v in check.offset) <= _verify.MAX_OFFSET * check.working_pixel


def test_a_shifted_estimate_fails_and_the_peak_points_back_to_the_truth(warped):
    ir, vis, true = warped
    shift = np.eye(3)
    shift[:2, 2] = (0.0, 30.0)  # the estimate looks 30 visible px too far right
    check = _verify.edge_check(ir, vis, true @ shift)
    assert not check.passed
    # The infrared content placed at p by the estimate truly belongs at p + 30 px (cols).
    assert abs(check.offset[1] - 30.0) <= 2 * check.working_pixel
    assert abs(check.offset[0]) <= 2 * check.working_pixel
    assert "30 visible px away" in check.describe() or "29 visible px" in check.describe()


def test_a_wrong_scale_fails(warped):
    ir, vis, true = warped
    wrong = true.copy()
    wrong[:2, :2] *= 1.3
    assert not _verify.edge_check(ir, vis, wrong).passed


def test_unrelated_images_fail():
    a, _ = _warps.scene((240, 320), seed=3)
    _, b = _warps.scene((240, 320), seed=4)
    assert not _verify.edge_check(_normalise(a), _normalise(b), np.eye(3)).passed


def test_no_overlap_fails_without_error(warped):
    ir, vis, _ = warped
    far = np.eye(3)
    far[:2, 2] = (5000.0, 5000.0)
    check = _verify.edge_check(ir, vis, far)
    assert not check.passed and check.significance == 0.0


def test_a_converged_estimate_is_one_the_check_passes(warped):
    ir, vis, true = warped
    found = _auto.estimate(ir, vis, model="similarity")
    assert found.converged, found.message
    assert _verify.edge_check(ir, vis, found.matrix).passed
    assert _warps.overlap_rms(true, found.matrix, ir.shape, vis.shape) <= 0.5


@pytest.mark.parametrize("canvas, window", [((7, 9), (5, 12)), ((12, 4), (3, 3))])
def test_window_sums_are_the_correlation_with_a_frame_of_ones(canvas, window):
    """The search's and the check's overlap counts (``_search._window_sums``): for each shift
    ``d`` in the FFT's wrapped layout, the sum of the canvas values that land in the window,
    written out shift by shift."""
    from napari_resfuse.register._search import _window_sums

    a = np.random.default_rng(3).random(canvas)
    size = (canvas[0] + window[0] + 2, canvas[1] + window[1] + 1)
    got = _window_sums(a, window, size)
    for i in range(size[0]):
        for j in range(size[1]):
            d = (i if i < window[0] else i - size[0], j if j < window[1] else j - size[1])
            inside = [
                a[r, c]
                for r in range(canvas[0])
                for c in range(canvas[1])
                if 0 <= r + d[0] < window[0] and 0 <= c + d[1] < window[1]
            ]
            assert got[i, j] == pytest.approx(sum(inside), abs=1e-12)
