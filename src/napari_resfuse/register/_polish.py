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
from ._search import _orientation, _Pyramid, _Stopped

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
    pyramids: tuple[_Pyramid, _Pyramid] | None = None,
) -> tuple[np.ndarray, float, float]:
    """Maximise :math:`C` around ``mat`` (visible px → infrared px) on planes ``ir``, ``vis``.

    ``pyramids`` (the infrared's and the visible's :class:`._search._Pyramid`, if already
    built) make the shrinking and smoothing of a large frame cheap. Returns ``(matrix, score
    at mat, score at matrix)``; ``matrix`` is ``mat`` itself when the overlap is too small to
    measure.
    """
    ir_pyr, vis_pyr = pyramids if pyramids is not None else (_Pyramid(ir), _Pyramid(vis))
    scale = math.sqrt(abs(np.linalg.det(mat[:2, :2])))  # infrared px per visible px
    if scale < 1.0:  # the infrared is the coarser image: it is the fixed side
        fixed, moving, to_moving, moving_px = ir_pyr, vis_pyr, np.linalg.inv(mat), 1.0
    else:
        fixed, moving, to_moving, moving_px = vis_pyr, ir_pyr, mat, scale
    to_moving = to_moving / to_moving[2, 2]
    side = 2 * SIDE if model == "translation" else SIDE  # 2 parameters: a finer grid is cheap
    plane = fixed.levels[0]
    long = max(plane.shape)
    f = max(1.0, long / side) if long >= MIN_SIDE else long / MIN_SIDE  # fixed px per working px
    if f < 1.0:  # a small frame, enlarged (cubic): pixel k <-> coordinate k * f
        shape = tuple(int((d - 1) // f) + 1 for d in plane.shape)
        plane = ndimage.affine_transform(plane, (f, f), output_shape=shape, order=3, mode="nearest")
    else:
        plane = fixed.shrink(f)
    of = _orientation(plane)
    h, w = of.shape
    ratio = math.sqrt(abs(np.linalg.det(to_moving[:2, :2]))) * f  # moving px per working px
    smooth, octave = _smoothed(moving, ratio)
    smooth = np.ascontiguousarray(smooth, dtype=np.float32)
    hm, wm = moving.levels[0].shape

    def coordinates(t: np.ndarray, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        """Where working px ``(rr, cc)`` (flat) fall in ``smooth`` through ``t``."""
        out = np.empty((2, rr.size))
        np.multiply(rr, t[0, 0], out=out[0])
        out[0] += t[0, 1] * cc + t[0, 2]
        np.multiply(rr, t[1, 0], out=out[1])
        out[1] += t[1, 1] * cc + t[1, 2]
        if t[2, 0] or t[2, 1]:  # a homography
            out /= t[2, 0] * rr + t[2, 1] * cc + t[2, 2]
        elif t[2, 2] != 1.0:
            out /= t[2, 2]
        return out

    rr, cc = (a.ravel() * f for a in np.mgrid[0:h, 0:w].astype(np.float64))
    p = coordinates(to_moving, rr, cc)
    ok = (p[0] >= 0) & (p[0] <= hm - 1) & (p[1] >= 0) & (p[1] <= wm - 1)
    mask = ndimage.binary_erosion(ok.reshape(h, w), iterations=3)
    if mask.sum() < 64:
        return mat, 0.0, 0.0
    # Only the overlap's box (and a pixel around it, for the gradients) is resampled.
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, h)
    c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, w)
    mask = mask[r0:r1, c0:c1]
    rr, cc = (a.ravel() * f for a in np.mgrid[r0:r1, c0:c1].astype(np.float64))
    # The box's interior (the mask never reaches its one-pixel rim): the fixed field there,
    # zero off the mask, as real and imaginary planes.
    inner = mask[1:-1, 1:-1]
    ofm = np.where(inner, of[r0 + 1 : r1 - 1, c0 + 1 : c1 - 1], 0).astype(np.complex128)
    fixed_re, fixed_im, weight = ofm.real.copy(), ofm.imag.copy(), inner.astype(np.float64)
    norm_f = math.sqrt(float(np.vdot(ofm, ofm).real))
    n = CONTROLS[model]
    # Control points: corners of the overlap's box (fixed px), opposite ones for a similarity.
    box = np.array([[r0, c0], [r1 - 1, c1 - 1], [r0, c1 - 1], [r1 - 1, c0]], float) * f
    controls = box[:n]
    start = _apply(to_moving, controls)
    in_octave = np.diag([1.0 / octave, 1.0 / octave, 1.0])  # moving px -> smooth's px
    hb, wb = mask.shape
    grad_r, grad_c, mag2 = (np.empty(inner.shape) for _ in range(3))

    def gradients(t: np.ndarray) -> None:
        """Sobel gradients (written out, on the box's interior) of the moving plane seen
        through ``t`` (the box resampled bilinearly), and their squared magnitude."""
        v = ndimage.map_coordinates(smooth, coordinates(t, rr, cc), order=1, mode="nearest")
        v = v.reshape(hb, wb)
        d = v[2:] - v[:-2]
        np.add(d[:, :-2], d[:, 2:], out=grad_r)
        np.add(grad_r, 2.0 * d[:, 1:-1], out=grad_r)
        d = v[:, 2:] - v[:, :-2]
        np.add(d[:-2], d[2:], out=grad_c)
        np.add(grad_c, 2.0 * d[1:-1], out=grad_c)
        np.multiply(grad_r, grad_r, out=mag2)
        np.add(mag2, grad_c * grad_c, out=mag2)

    def transform(x: np.ndarray) -> np.ndarray:
        return fit_points(controls, start + x.reshape(n, 2) * moving_px, model)

    def score(x: np.ndarray) -> float:
        if stop is not None and stop():
            raise _Stopped
        gradients(in_octave @ transform(x))
        gr, gc = grad_r, grad_c
        d = 1.0 / (mag2 + max(float(mag2.mean()), 1e-12))  # 1 / (|g|² + ε²)
        # o_m = ((g_c² - g_r²) + 2i g_c g_r) / (|g|² + ε²); the fixed field is zero off the mask
        top = float(
            np.einsum("ij,ij->", (gc * gc - gr * gr) * fixed_re + 2.0 * gc * gr * fixed_im, d)
        )
        norm = mag2 * d
        den = norm_f * math.sqrt(float(np.einsum("ij,ij,ij->", norm, norm, weight)))
        return -top / den if den > 0 else 0.0

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
    out = t if fixed is vis_pyr else np.linalg.inv(t)
    return out / out[2, 2], before, float(-found.fun)


def _smoothed(pyramid: _Pyramid, ratio: float) -> tuple[np.ndarray, float]:
    """The pyramid's plane smoothed to pixels of ``ratio`` (σ = ½√(ratio² − 1) px), from the
    coarsest octave whose pixel is at most a third of ``ratio`` (sampled bilinearly at that
    spacing it keeps the detail a plane of full resolution would), and that octave's pixel."""
    if ratio <= 1.0:
        return pyramid.levels[0], 1.0
    k = 0
    while k + 1 < len(pyramid.levels) and 3 * 2 ** (k + 1) <= ratio:
        k += 1
    octave = 2.0**k
    sigma2 = 0.25 * (ratio**2 - 1.0) - 0.85**2 * (4.0**k - 1.0) / 3.0
    img = pyramid.levels[k]
    if sigma2 <= 0:
        return img, octave
    return ndimage.gaussian_filter(img, math.sqrt(sigma2) / octave), octave
