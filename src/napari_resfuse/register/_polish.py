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
:data:`SIDE` px on its long side, twice that for a translation and 1.5 times for a homography
(:data:`GRID_FACTOR`), or enlarged towards :data:`MIN_SIDE`, at most :data:`MAX_ENLARGE`
times, when smaller) that lie inside the overlap
(eroded by 3 px), where ``o_m(q; T)`` is the orientation field of the finer image, smoothed to
the working pixel size (σ = ½√(k² − 1) for k of its pixels per working pixel) and resampled
bilinearly through ``T``. Gradients are Sobel's; ε² is the mean of |g|² over the fixed
working plane for ``o_f`` and over the interior of the overlap's box (the pixels resampled, less
their one-pixel rim) for ``o_m``.
The transform is parameterised by the displacements (visible px) of control points at the
overlap box's corners (1 for a translation, 2 for a similarity, 3 for an affine, 4 for a
homography), refitted exactly by :func:`._landmarks.fit_points`. The maximum is found by
SciPy's L-BFGS-B (at most :data:`EVALUATIONS` evaluations per parameter), first on a grid
twice as coarse (its basin twice as wide: on real (TNO) pairs, starts 4 to 7 px off came back
only so), then on the working grid, from :math:`C`'s exact gradient: torch's automatic
differentiation of the measure with respect to the matrix (the bilinear resampling, the Sobel
gradients, the normalisation) times the matrix's derivative with respect to the displacements
(constant for the linear models, solved from the linearised projection for a homography). On
the benchmark L-BFGS-B needed 17 to 60 evaluations of value and gradient (each 3 to 4 times
the cost of a value) where SciPy's derivative-free Powell method needed 550 to 1200 values,
for the same results (a rig homography 1.9 -> 1.2 s).
The optimiser is SciPy's; the measure is the one the search and the edge check use. The
measure's tensors are small (a few hundred px a side): the polish runs torch on one thread,
which measured faster than two on two cores (the second thread's waits stalled evaluations by
up to 0.1 s) and makes the result independent of the machine's thread count.

When the coarser image had to be shrunk for that grid (a 640 × 512 thermal frame: 2.5 of its
pixels per working pixel), the measure's optimum there is up to 1.3 visible px off; a second,
*fine* stage then takes :math:`C` on the coarser image's own grid (up to :data:`FINE_SIDE` px)
and makes one Newton step from the first stage's result: gradient and Hessian by central
differences of :data:`FINE_STEP` working px (15 evaluations for a similarity, 28 for an
affine, 45 for a homography), the step kept if :math:`C` rises (benchmark: a 464 × 618 frame
beside a 3000 × 4000 one from 1.06 / 1.32 to 0.13 / 0.17 visible px for a similarity / an
affine).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable

import numpy as np
from scipy import ndimage, optimize

from ._landmarks import fit_points
from ._refine import _apply, _coordinates
from ._search import _orientation, _Pyramid, _Stopped

#: The long side (px) of the working grid: the coarser image, shrunk to at most this.
SIDE = 256

#: A coarser image smaller than this (px, long side) is enlarged (cubic) towards it, at most
#: MAX_ENLARGE times: a 60 x 80 px thermal frame measured on its own grid left 1 to 2 visible
#: px of error where enlarged it leaves 0.2 to 1. Against enlarging to 128 px (this release's
#: predecessor), on the issue's set over 36 warps (seeds 12 and 7) the affine went from 92 to
#: 97 % within 1 px and the homography from 72 to 86 %; on full-HD frames (infrared of 108 x
#: 192 to 141 x 250 px) the homography from 9 to 12 of 12. Enlarging without a cap (a 58 x 78
#: px frame 3.3 times) did worse for the smallest frames' homographies (72 %).
MIN_SIDE = 256
MAX_ENLARGE = 2.0

#: The working grid's long side for some models, in SIDEs: a translation's 2 parameters make a
#: finer grid cheap; a homography's 8 need it: on the rig set's three draws of warps (24, an
#: infrared of 223 x 297 to 457 x 610 px) 384 px put 22 within 1 visible px where 256 px put 20
#: (median 0.41 / 0.56 / 0.39 -> 0.35 / 0.45 / 0.36 px); for the affine it did not help (22
#: against 23).
GRID_FACTOR = {"translation": 2.0, "projective": 1.5}

#: Control points per model (their displacements are the parameters).
CONTROLS = {"translation": 1, "similarity": 2, "affine": 3, "projective": 4}

#: L-BFGS-B's tolerances: on the largest component of the projected gradient (C per visible
#: px) and on the relative change of C between iterations; and its budget of evaluations per
#: parameter (the benchmark's homographies took 17 to 60 in all).
GTOL = 1e-5
FTOL = 1e-7
EVALUATIONS = 40

#: The fine stage's grid (long side, px): the coarser image at its own resolution up to this.
FINE_SIDE = 1024

#: The fine stage's finite-difference step, in working pixels.
FINE_STEP = 0.25


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
    at mat, score at matrix)``, both on the working grid of the last stage; ``matrix`` is
    ``mat`` itself when the overlap is too small to measure or nothing scored higher.
    """
    pyramids = pyramids if pyramids is not None else (_Pyramid(ir), _Pyramid(vis))
    with _one_thread():
        return _polish(pyramids, mat, model, stop)


def _maximise(measure, x0=None):
    """L-BFGS-B on ``measure`` from ``x0`` (zero displacements by default): SciPy's result."""
    return optimize.minimize(
        measure.negative,
        np.zeros(measure.size) if x0 is None else x0,
        jac=True,
        method="L-BFGS-B",
        options={"gtol": GTOL, "ftol": FTOL, "maxfun": EVALUATIONS * measure.size},
    )


def _polish(pyramids, mat, model, stop):
    side = SIDE * GRID_FACTOR.get(model, 1.0)
    coarse = _Measure(pyramids, mat, model, side, stop)
    if not coarse.usable:
        return mat, 0.0, 0.0
    before = coarse(np.zeros(coarse.size))
    # First on a grid twice as coarse (a basin twice as wide), then on the working grid.
    x0 = None
    wide = _Measure(pyramids, mat, model, side, stop, coarsen=2.0)
    if wide.usable:
        found = _maximise(wide)
        if -found.fun > wide(np.zeros(wide.size)):
            x0 = coarse.displacements(wide.matrix(found.x))
    found = _maximise(coarse, x0)
    best, after = (coarse.matrix(found.x), -found.fun) if -found.fun > before else (mat, before)
    if coarse.pixel <= 1.0 or model == "translation":
        return best, before, after
    # The coarser image was shrunk for the grid above: finish on its own grid.
    fine = _Measure(pyramids, best, model, FINE_SIDE, stop)
    if not fine.usable:
        return best, before, after
    x, _, value = _newton(fine)
    if x is None:
        return best, before, after
    return fine.matrix(x), fine.at(mat), value


@contextlib.contextmanager
def _one_thread():
    """torch on one thread for the block (the previous count restored after it)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _Measure:
    """:math:`C` on one working grid around a start matrix, as a function of the control
    points' displacements ``x`` (visible px): the working plane, the overlap's mask and the
    smoothed moving plane are set up once."""

    def __init__(self, pyramids, mat, model: str, side: float, stop=None, coarsen: float = 1.0):
        ir_pyr, vis_pyr = pyramids
        self.model, self.stop = model, stop
        scale = math.sqrt(abs(np.linalg.det(mat[:2, :2])))  # infrared px per visible px
        if scale < 1.0:  # the infrared is the coarser image: it is the fixed side
            fixed, moving, to_moving, self.moving_px = ir_pyr, vis_pyr, np.linalg.inv(mat), 1.0
        else:
            fixed, moving, to_moving, self.moving_px = vis_pyr, ir_pyr, mat, scale
        self.infrared_fixed = fixed is ir_pyr
        to_moving = to_moving / to_moving[2, 2]
        plane = fixed.levels[0]
        long = max(plane.shape)
        # fixed px per working px
        if long >= MIN_SIDE:
            f = max(1.0, long / side)
        else:
            f = max(long / MIN_SIDE, 1.0 / MAX_ENLARGE)
        f *= coarsen
        self.pixel = f
        if f < 1.0:  # a small frame, enlarged (cubic): pixel k <-> coordinate k * f
            shape = tuple(int((d - 1) // f) + 1 for d in plane.shape)
            plane = ndimage.affine_transform(
                plane, (f, f), output_shape=shape, order=3, mode="nearest"
            )
        else:
            plane = fixed.shrink(f)
        of = _orientation(plane)
        h, w = of.shape
        ratio = math.sqrt(abs(np.linalg.det(to_moving[:2, :2]))) * f  # moving px per working px
        smooth, octave = _smoothed(moving, ratio)
        # The measure's arithmetic is torch's, in float32: 2 to 3 times faster than in float64
        # (memory-bound: a full-HD moving plane is 8 MB), C within 5e-7 of float64's and the
        # fine stage's step within 0.002 visible px (measured on a 342 x 608 frame).
        import torch

        dt = self.dtype = torch.float32
        self.smooth = torch.from_numpy(np.ascontiguousarray(smooth)).to(dt)[None, None]
        hm, wm = moving.levels[0].shape
        # A working pixel in visible px: the finite-difference step of the fine stage.
        self.step = ratio if self.infrared_fixed else f
        rr, cc = (a.ravel() * f for a in np.mgrid[0:h, 0:w].astype(np.float64))
        p = _coordinates(to_moving, rr, cc)
        ok = (p[0] >= 0) & (p[0] <= hm - 1) & (p[1] >= 0) & (p[1] <= wm - 1)
        mask = ndimage.binary_erosion(ok.reshape(h, w), iterations=3)
        self.usable = bool(mask.sum() >= 64)
        if not self.usable:
            return
        # Only the overlap's box (and a pixel around it, for the gradients) is resampled.
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, h)
        c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, w)
        mask = mask[r0:r1, c0:c1]
        # the box's rows and columns (fixed px), shaped to broadcast to (rows, cols, 1)
        # (float64: the gradient with respect to the matrix sums these times the resampling's
        # gradient over the box, terms that largely cancel; in float32 it was 2 % off)
        self.rows = torch.arange(r0, r1, dtype=torch.float64).mul_(f)[:, None, None]
        self.cols = torch.arange(c0, c1, dtype=torch.float64).mul_(f)[None, :, None]
        self.shape = mask.shape
        # The box's interior (the mask never reaches its one-pixel rim): the fixed field
        # there, zero off the mask, as real and imaginary planes.
        self.inner = mask[1:-1, 1:-1]
        ofm = np.where(self.inner, of[r0 + 1 : r1 - 1, c0 + 1 : c1 - 1], 0)
        ofm = ofm.astype(np.complex128)
        self.fixed_re = torch.from_numpy(ofm.real.copy()).to(dt)
        self.fixed_im2 = torch.from_numpy(2.0 * ofm.imag).to(dt)  # o_m's imaginary: 2 g_c g_r
        self.weight = torch.from_numpy(self.inner.astype(np.float64)).to(dt)
        self.norm_f = math.sqrt(float(np.vdot(ofm, ofm).real))
        n = CONTROLS[model]
        self.size = 2 * n
        # Control points: corners of the overlap's box (fixed px), opposite ones for a
        # similarity.
        box = np.array([[r0, c0], [r1 - 1, c1 - 1], [r0, c1 - 1], [r1 - 1, c0]], float) * f
        self.controls = box[:n]
        self.start = _apply(to_moving, self.controls)
        if model != "projective":  # the matrix is linear in x: its derivative is constant
            base = self.transform(np.zeros(self.size)).ravel()
            self._linear = np.stack(
                [self.transform(e).ravel() - base for e in np.eye(self.size)], axis=1
            )
        # moving px -> the smoothed plane's coordinates as grid_sample takes them: (-1, 1)
        # across its pixel centres
        hs, ws = self.smooth.shape[2:]
        self.in_octave = np.array(
            [[2.0 / (octave * (hs - 1)), 0, -1.0], [0, 2.0 / (octave * (ws - 1)), -1.0], [0, 0, 1]]
        )

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Fixed px -> moving px for displacements ``x``."""
        moved = self.start + np.reshape(x, (-1, 2)) * self.moving_px
        return fit_points(self.controls, moved, self.model)

    def matrix(self, x: np.ndarray) -> np.ndarray:
        """Visible px -> infrared px for displacements ``x``."""
        t = self.transform(x)
        out = np.linalg.inv(t) if self.infrared_fixed else t
        return out / out[2, 2]

    def displacements(self, mat: np.ndarray) -> np.ndarray:
        """The ``x`` of a matrix of the model (visible px -> infrared px)."""
        to_moving = np.linalg.inv(mat) if self.infrared_fixed else mat
        x = (_apply(to_moving / to_moving[2, 2], self.controls) - self.start) / self.moving_px
        return x.ravel()

    def at(self, mat: np.ndarray) -> float:
        """:math:`C` at a matrix of the model (visible px -> infrared px)."""
        return self(self.displacements(mat))

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """The derivative (9 × p) of :meth:`transform`'s entries (row by row) with respect to
        ``x``. For a homography (``T[2, 2] = 1``) it solves the projection linearised at the
        control points: moving control point ``k`` seen at ``m_k = (u, v) / w`` with
        ``(u, v, w) = T ĉ_k`` moves by ``(dT₀·ĉ_k − m_r dT₂·ĉ_k, dT₁·ĉ_k − m_c dT₂·ĉ_k) / w``."""
        if self.model != "projective":
            return self._linear
        t = self.transform(x)
        hom = np.c_[self.controls, np.ones(len(self.controls))]
        seen = hom @ t.T
        w = seen[:, 2:3]
        m = seen[:, :2] / w
        a = np.zeros((self.size, 8))
        a[0::2, 0:3] = a[1::2, 3:6] = hom / w
        a[0::2, 6:8] = -m[:, 0:1] * self.controls / w
        a[1::2, 6:8] = -m[:, 1:2] * self.controls / w
        out = np.zeros((9, self.size))
        out[:8] = np.linalg.solve(a, np.eye(self.size)) * self.moving_px
        return out

    def _grid_matrix(self, x: np.ndarray) -> np.ndarray:
        """The matrix from the box's pixels to grid_sample's coordinates, for ``x``."""
        if self.stop is not None and self.stop():
            raise _Stopped
        return self.in_octave @ self.transform(x)

    def _value(self, t):
        """:math:`C` (a float64 tensor) for grid_sample's matrix ``t`` (a 3 × 3 tensor):
        the moving plane resampled bilinearly over the box, its Sobel gradients on the box's
        interior (written out), its orientation field correlated with the fixed one."""
        import torch

        # (col, row) of each pixel (grid_sample's order): t's rows 1 and 0, by broadcasting
        grid = self.rows * t[[1, 0], 0] + (self.cols * t[[1, 0], 1] + t[[1, 0], 2])
        if self.model == "projective":
            grid = grid / (self.rows * t[2, 0] + (self.cols * t[2, 1] + t[2, 2]))
        v = _bilinear(self.smooth, grid[None].to(self.dtype))
        d = v[2:] - v[:-2]
        gr = d[:, :-2] + d[:, 2:] + 2.0 * d[:, 1:-1]
        d = v[:, 2:] - v[:, :-2]
        gc = d[:-2] + d[2:] + 2.0 * d[1:-1]
        gr2, gc2 = gr * gr, gc * gc
        mag2 = gr2 + gc2
        inv = 1.0 / (mag2 + mag2.mean().clamp_min(1e-12))  # 1 / (|g|² + ε²)
        # o_m = ((g_c² - g_r²) + 2i g_c g_r) / (|g|² + ε²); the fixed field is zero off the mask
        top = ((gc2 - gr2) * self.fixed_re + gc * gr * self.fixed_im2) * inv
        norm = mag2 * inv
        # sums accumulated in float64
        squares = (norm * norm * self.weight).sum(dtype=torch.float64)
        return top.sum(dtype=torch.float64) / (self.norm_f * torch.sqrt(squares) + 1e-300)

    def __call__(self, x: np.ndarray) -> float:
        import torch

        t = torch.from_numpy(self._grid_matrix(x))
        with torch.no_grad():
            return float(self._value(t))

    def value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """:math:`C` at ``x`` and its gradient with respect to ``x`` (torch's automatic
        differentiation through the measure, chained with :meth:`jacobian`)."""
        import torch

        t = torch.tensor(self._grid_matrix(x), dtype=torch.float64, requires_grad=True)
        value = self._value(t)
        value.backward()
        # d C / d T = in_octaveᵀ · d C / d t, T being transform(x)
        by_matrix = (self.in_octave.T @ t.grad.numpy()).ravel()
        return float(value.detach()), self.jacobian(x).T @ by_matrix

    def negative(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``-C`` and its gradient: what SciPy's minimiser takes."""
        value, gradient = self.value_and_gradient(x)
        return -value, -gradient


def _bilinear(plane, grid):
    """``plane`` ((1, 1, H, W) tensor) sampled bilinearly at ``grid`` ((1, h, w, 2):
    column and row of each point scaled to −1 … 1 across the pixel centres; beyond them the
    edge pixel), as an (h, w) tensor: what ``scipy.ndimage.map_coordinates(order=1,
    mode="nearest")`` gives (to 1e-13 in float64), four times faster on two cores."""
    import torch

    out = torch.nn.functional.grid_sample(
        plane, grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return out[0, 0]


def _newton(measure: _Measure) -> tuple[np.ndarray | None, float, float]:
    """One Newton step on ``measure`` from zero displacements: its gradient and Hessian by
    central differences of a quarter of a working pixel (1 + 2p + p(p − 1)/2 evaluations for
    p parameters: 15 for a similarity, 28 for an affine, 45 for a homography), the step to the
    quadratic model's maximum, kept if :math:`C` rises there.

    Near the coarse stage's optimum (a fraction of a working pixel away) the measure is
    quadratic enough for one step: a second one measured no closer to the truth. Returns
    ``(x, C(0), C(x))``, ``x`` None when the model is not concave, the step leaves it (more
    than two working pixels) or :math:`C` does not rise.
    """
    p, h = measure.size, FINE_STEP * measure.step
    x = np.zeros(p)
    f0 = measure(x)
    unit = np.eye(p) * h
    plus = np.array([measure(e) for e in unit])
    minus = np.array([measure(-e) for e in unit])
    gradient = (plus - minus) / (2.0 * h)
    hessian = np.diag((plus - 2.0 * f0 + minus) / h**2)
    for i, j in itertools.combinations(range(p), 2):
        both = measure(unit[i] + unit[j])
        hessian[i, j] = hessian[j, i] = (both - plus[i] - plus[j] + f0) / h**2
    if np.linalg.eigvalsh(hessian).max() >= 0:
        return None, f0, f0
    delta = -np.linalg.solve(hessian, gradient)
    if np.abs(delta).max() > 2.0 * measure.step:
        return None, f0, f0
    f1 = measure(delta)
    return (delta if f1 > f0 else None), f0, max(f0, f1)


def _smoothed(pyramid: _Pyramid, ratio: float) -> tuple[np.ndarray, float]:
    """The pyramid's plane smoothed to pixels of ``ratio`` (σ = ½√(ratio² − 1) px), from the
    coarsest octave whose pixel is at most half of ``ratio`` (about σ: sampled bilinearly at
    that spacing the smoothed plane keeps what a plane of full resolution would), and that
    octave's pixel."""
    if ratio <= 1.0:
        return pyramid.levels[0], 1.0
    k = pyramid.octave(ratio / 2.0)
    return pyramid.blurred(k, 0.5 * math.sqrt(ratio**2 - 1.0), mode="reflect"), 2.0**k
