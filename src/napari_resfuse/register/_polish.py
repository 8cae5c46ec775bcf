"""Stage 5 of :mod:`._auto`: polish an estimate on the edge orientations of the coarser grid.

Mutual information on the refinement's working grids leaves an estimate 0.5 to 5 visible px
off when the infrared is 3 to 6 times coarser than the visible image (its optimum is broad on
a 60 × 80 px thermal frame, and an affine or projective fit from tiles inherits each tile's
error). This stage maximises another, sharper measure around the estimate: the normalised
correlation of the two edge-orientation fields (the doubled angle
``o = (g_x + i g_y)² / (|g|² + ε²)`` of the search and of the edge check, blind to the sign and
the strength of the contrast),

    C(T) = Re Σ o_f(q) · conj(o_m(q; T)) / √(Σ |o_f(q)|² · Σ |o_m(q; T)|²),

over the pixels ``q`` of the *coarser* image's grid (the fixed side, shrunk to at most
:data:`SIDE` px on its long side, twice that for a translation, or enlarged to
:data:`MIN_SIDE` when smaller) that lie inside the overlap
(eroded by 3 px), where ``o_m(q; T)`` is the orientation field of the finer image, smoothed to
the working pixel size (σ = ½√(k² − 1) for k of its pixels per working pixel) and resampled
bilinearly through ``T``.
The transform is parameterised by the displacements (visible px) of control points at the
overlap box's corners (1 for a translation, 2 for a similarity, 3 for an affine, 4 for a
homography), refitted exactly by :func:`._landmarks.fit_points`; the maximum is found by
SciPy's Powell method (derivative free, at most :data:`EVALUATIONS` evaluations per parameter).
The optimiser is SciPy's; the measure is the one the search and the edge check use.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import ndimage, optimize

from ._landmarks import fit_points
from ._refine import _apply
from ._search import _orientation, _shrink, _Stopped

#: The long side (px) of the working grid: the coarser image, shrunk to at most this.
SIDE = 256

#: A coarser image smaller than this (px, long side) is enlarged to it: a 60 x 80 px thermal
#: frame measured on its own grid left 1 to 2 visible px of error where enlarged it leaves 0.2
#: to 1 (benchmark: similarity and affine 92 -> 100 % within 1 px, projective 67 -> 75 %).
MIN_SIDE = 128

#: Control points per model (their displacements are the parameters).
CONTROLS = {"translation": 1, "similarity": 2, "affine": 3, "projective": 4}

#: Powell's tolerances on the parameters (visible px) and on the measure (relative), and its
#: budget of evaluations per parameter. A tighter FTOL (1e-8) measured no more accurate on the
#: benchmark and 15-25 % slower.
XTOL = 0.05
FTOL = 1e-6
EVALUATIONS = 150


def polish(
    ir: np.ndarray,
    vis: np.ndarray,
    mat: np.ndarray,
    model: str,
    stop: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, float, float]:
    """Maximise :math:`C` around ``mat`` (visible px → infrared px) on planes ``ir``, ``vis``.

    Returns ``(matrix, score at mat, score at matrix)``; ``matrix`` is ``mat`` itself when the
    overlap is too small to measure.
    """
    scale = math.sqrt(abs(np.linalg.det(mat[:2, :2])))  # infrared px per visible px
    if scale < 1.0:  # the infrared is the coarser image: it is the fixed side
        fixed, moving, to_moving, moving_px = ir, vis, np.linalg.inv(mat), 1.0
    else:
        fixed, moving, to_moving, moving_px = vis, ir, mat, scale
    to_moving = to_moving / to_moving[2, 2]
    side = 2 * SIDE if model == "translation" else SIDE  # 2 parameters: a finer grid is cheap
    long = max(fixed.shape)
    f = max(1.0, long / side) if long >= MIN_SIDE else long / MIN_SIDE  # fixed px per working px
    if f < 1.0:  # a small frame, enlarged (cubic): pixel k <-> coordinate k * f
        shape = tuple(int((d - 1) // f) + 1 for d in fixed.shape)
        plane = ndimage.affine_transform(fixed, (f, f), output_shape=shape, order=3, mode="nearest")
    else:
        plane = _shrink(fixed, f)
    of = _orientation(plane)
    h, w = of.shape
    ratio = math.sqrt(abs(np.linalg.det(to_moving[:2, :2]))) * f  # moving px per working px
    smooth = (
        ndimage.gaussian_filter(moving, 0.5 * math.sqrt(ratio**2 - 1.0)) if ratio > 1 else moving
    )
    hm, wm = moving.shape

    def seen(t, rows, cols):
        """The smoothed moving image seen through ``t`` on working px ``rows`` × ``cols``,
        and where that lies inside the moving frame."""
        rr, cc = np.meshgrid(rows * f, cols * f, indexing="ij")
        p = _apply(t, np.c_[rr.ravel(), cc.ravel()])
        ok = (p[:, 0] >= 0) & (p[:, 0] <= hm - 1) & (p[:, 1] >= 0) & (p[:, 1] <= wm - 1)
        values = ndimage.map_coordinates(smooth, p.T, order=1, mode="nearest")
        return values.reshape(rr.shape), ok.reshape(rr.shape)

    _, ok = seen(to_moving, np.arange(h), np.arange(w))
    mask = ndimage.binary_erosion(ok, iterations=3)
    if mask.sum() < 64:
        return mat, 0.0, 0.0
    # Only the overlap's box (and a pixel around it, for the gradients) is resampled.
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, h)
    c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, w)
    rows, cols = np.arange(r0, r1), np.arange(c0, c1)
    mask = mask[r0:r1, c0:c1]
    ofm = of[r0:r1, c0:c1][mask].astype(np.complex128)
    norm_f = math.sqrt(float(np.vdot(ofm, ofm).real))
    n = CONTROLS[model]
    # Control points: corners of the overlap's box (fixed px), opposite ones for a similarity.
    box = np.array([[r0, c0], [r1 - 1, c1 - 1], [r0, c1 - 1], [r1 - 1, c0]], float) * f
    controls = box[:n]
    start = _apply(to_moving, controls)

    def transform(x: np.ndarray) -> np.ndarray:
        return fit_points(controls, start + x.reshape(n, 2) * moving_px, model)

    def score(x: np.ndarray) -> float:
        if stop is not None and stop():
            raise _Stopped
        values, _ = seen(transform(x), rows, cols)
        om = _orientation(values)[mask].astype(np.complex128)
        den = norm_f * math.sqrt(float(np.vdot(om, om).real))
        return -float(np.vdot(om, ofm).real) / den if den > 0 else 0.0

    x0 = np.zeros(2 * n)
    before = -score(x0)
    found = optimize.minimize(
        score,
        x0,
        method="Powell",
        options={"xtol": XTOL, "ftol": FTOL, "maxfev": EVALUATIONS * 2 * n},
    )
    if -found.fun <= before:
        return mat, before, before
    t = transform(found.x)
    out = t if fixed is vis else np.linalg.inv(t)
    return out / out[2, 2], before, float(-found.fun)
