"""Stage 5 of the automatic estimate (``register._polish.polish``): the edge-orientation polish.

From a known warp's truth put a few pixels off (as mutual information leaves a coarse infrared),
the polish must come back to within half a visible pixel, for each model and for an infrared
finer or coarser than the visible image; its measure must be the normalised correlation of the
two orientation fields written out here independently; and it must leave a matrix it cannot
measure alone.
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


def _orientation(img):
    """(g_c + i g_r)² / (|g|² + mean |g|²) with Sobel gradients, written out again."""
    gr = ndimage.sobel(img.astype(np.float64), 0, mode="nearest")
    gc = ndimage.sobel(img.astype(np.float64), 1, mode="nearest")
    mag2 = gr**2 + gc**2
    angle = np.arctan2(gr, gc)
    return mag2 / (mag2 + mag2.mean()) * np.exp(2j * angle)


def test_the_measure_is_the_normalised_correlation_of_the_orientation_fields(scene):
    # An infrared coarser than 256 px on neither side and on the visible grid's scale: the
    # working grid is the infrared's own, and the visible image (smoothed to the infrared's
    # pixel, sigma 0.5·√(k²−1)) is resampled there bilinearly.
    ir0, vis0 = scene
    ir, vis, true = _warps.warp_pair(ir0, vis0, ratio=2.0, rotation=3.0, infrared_side=0.7)
    a, b = _normalise(ir).astype(np.float64), _normalise(vis).astype(np.float64)
    assert max(a.shape) <= _polish.SIDE
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
    y = _orientation(seen[box])[mask[box]]
    expected = np.sum(x * np.conj(y)).real / math.sqrt(np.sum(abs(x) ** 2) * np.sum(abs(y) ** 2))
    assert before == pytest.approx(expected, abs=2e-3)


def test_no_overlap_leaves_the_matrix_alone(scene):
    ir0, vis0 = scene
    ir, vis, true = _warps.warp_pair(ir0, vis0, ratio=2.0)
    far = true.copy()
    far[:2, 2] += 5000.0
    found, before, after = _polish.polish(_normalise(ir), _normalise(vis), far, "affine")
    assert found is far and before == after == 0.0
