"""The automatic multimodal estimator behind :func:`napari_resfuse.register.register`.

:func:`estimate` finds the 3 × 3 matrix that maps a *visible* pixel ``(row, col, 1)`` to the
*infrared* pixel seen there (napari's order, pixel centres at integer coordinates), for two
images of unrelated or inverted contrast, different sizes and resolutions (1 to 8 either way),
a roll of up to ±10°, an offset of up to a quarter of the frame and a partial overlap.

Method, in three stages:

1. **Global search** (numpy/scipy FFT, no optimiser). Both images become edge-orientation
   fields ``(g_x + i g_y)² / (|g|² + ε²)``: the doubled angle makes them blind to the sign of
   the contrast (hot-bright against dark-visible) and the normalisation to its strength. For
   each candidate scale (1/8.5 to 8.5 infrared px per visible px in steps of 15 %, or ±16 %
   around ``scale_hint``) and roll (−10° to 10° in 5° steps) the infrared field is resampled
   onto a coarse visible grid (the larger field of view about 160 px across) and correlated
   with the visible one over *all* translations at once by FFT, normalised over each overlap
   (masked correlation). A translation is scored by its *significance*: the normalised
   correlation times √(overlap in coarse pixels), which a chance alignment keeps near
   N(0, 1); overlaps below ``min_overlap`` of the smaller frame are not considered. This is
   the global initialisation that puts the optimiser inside its capture range.
2. **Refinement** with SimpleITK's registration framework: Mattes mutual information (32
   bins; about :data:`SAMPLES` jittered regular samples per level, every pixel at the very
   last level), regular-step gradient descent with scales from the physical shift, a pyramid
   (shrink up to 8, then half that, for the best two distinct starts — the coarsest level
   keeps the visible ≥ 48 px and the infrared ≥ 32 px, a start that runs away by more than
   8 % of the frame is dropped — then 2, 1 for the best of them), a
   similarity transform (a translation for ``model="translation"``). Both grids are smoothed
   by one working pixel at the finest level: without it linear interpolation makes mutual
   information peak half a pixel off. The visible working grid has pixels about half the
   infrared's (at most ``work_side`` px on its long side), the infrared is shrunk to match.
3. **Affine and projective** (``model="affine"`` / ``"projective"``): the overlap is cut into
   4 × 4 tiles; each is registered by a translation on top of the current estimate (SimpleITK,
   Mattes MI); the tile centres and their matches give the affine or the homography by least
   squares (normalised DLT for the homography), dropping disagreeing tiles, repeated (at most
   3 times) until it settles. An affine is kept only if it raises the mutual information over
   the similarity.

Why SimpleITK: its Mattes mutual information is the established multimodal measure (Mattes et
al. 2003), well kept and fast (multithreaded C++), with pyramids and optimisers built in. It has
no 2-D projective transform, hence stage 3's tile fit (with SimpleITK doing each tile's
optimisation) rather than a home-made 8-parameter optimiser; the edge-orientation search is
ours because SimpleITK has no global (exhaustive over translations) multimodal search that
fits a 2-second budget.

``AutoEstimate.score`` is the Mattes mutual information (in nats, higher is better; 0 for
independent images) of the result on the working grids smoothed by one pixel, from the
similarity stage or the kept affine; ``metric`` is ``"mattes_mi"``. ``converged`` is False
(with the numbers in ``message``) when the global search's best significance is below
:data:`MIN_SIGNIFICANCE` (noise, constant or unrelated images), when every refinement start
failed, when an affine/projective fit found too few structured tiles, or when stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

__all__ = ["AutoEstimate", "estimate"]

MODELS = ("translation", "similarity", "affine", "projective")

#: The name of :attr:`AutoEstimate.score`'s measure.
METRIC = "mattes_mi"

#: The smallest accepted significance of the global search's best alignment (its normalised
#: edge-orientation correlation times the square root of the overlap in coarse pixels): pure
#: noise gives about 4 to 6, the bundled sample pair (whose infrared shows almost none of the
#: visible image's edges) 14, two different made-up scenes 17.6, and the known warps of the
#: tests and of real (TNO) pairs 17 to 90, mostly above 25.
MIN_SIGNIFICANCE = 18.0

#: Pixels sampled by the mutual information per pyramid level (all of them on smaller grids).
SAMPLES = 100_000

#: Pixels sampled at the very last level (every pixel of grids up to that size).
FINAL_SAMPLES = 250_000


@dataclass(frozen=True)
class AutoEstimate:
    """What :func:`estimate` found."""

    matrix: np.ndarray
    score: float
    metric: str
    converged: bool
    iterations: int
    message: str


def _DEBUG(*args) -> None:  # a hook for tuning scripts
    return None


class _Stopped(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Planes: normalisation and resampling (a plane at factor f: its pixel k sees coordinate k * f)


def _normalise(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, dtype=np.float64)
    lo, hi = np.percentile(img, (0.5, 99.5))
    if hi <= lo:
        lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        return np.zeros_like(img, dtype=np.float32)
    return np.clip((img - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _shrink(img: np.ndarray, factor: float) -> np.ndarray:
    """``img`` seen with pixels ``factor`` times larger: pixel k ↔ coordinate k * factor."""
    if factor <= 1.0 + 1e-9:
        return img
    blurred = ndimage.gaussian_filter(img, 0.5 * math.sqrt(factor**2 - 1.0), mode="nearest")
    shape = tuple(int((s - 1) // factor) + 1 for s in img.shape)
    return ndimage.affine_transform(
        blurred, (factor, factor), output_shape=shape, order=1, mode="nearest"
    )


class _Pyramid:
    """Octaves of a plane (factor 2**k), for cheap resampling at any coarser scale."""

    def __init__(self, img: np.ndarray):
        self.levels = [img]
        while min(self.levels[-1].shape) > 24:
            prev = self.levels[-1]
            blurred = ndimage.gaussian_filter(prev, 0.85, mode="nearest")
            self.levels.append(blurred[::2, ::2])

    def at(self, factor: float) -> tuple[np.ndarray, float]:
        """The finest octave no finer than needed for pixels of ``factor`` and its own factor."""
        k = 0
        while k + 1 < len(self.levels) and 2 ** (k + 1) <= factor * 1.01:
            k += 1
        return self.levels[k], float(2**k)


# --------------------------------------------------------------------------------------------
# Global search: scale × rotation, translation by FFT correlation of gradient orientations


def _orientation(img: np.ndarray) -> np.ndarray:
    """``(gx + i gy)² / (|g|² + ε²)``: edge orientation, blind to contrast sign and strength."""
    gr = ndimage.sobel(img, 0, mode="nearest")
    gc = ndimage.sobel(img, 1, mode="nearest")
    mag2 = gr * gr + gc * gc
    eps2 = max(float(np.mean(mag2)), 1e-12)
    return ((gc + 1j * gr) ** 2 / (mag2 + eps2)).astype(np.complex64)


def _similarity(scale: float, angle: float) -> np.ndarray:
    """A (row, col) linear map: rotation by ``angle`` radians times ``scale``."""
    c, s = math.cos(angle), math.sin(angle)
    return scale * np.array([[c, -s], [s, c]])


def _global_search(ir_pyr, vis_pyr, scales, angles, min_overlap, progress, stop):
    """Best (score, scale, angle, matrix) per (scale, angle), by FFT over all translations."""
    vis0 = vis_pyr.levels[0]
    hv, wv = vis0.shape
    hi, wi = ir_pyr.levels[0].shape
    results = []
    cache = {}
    total = len(scales) * len(angles)
    done = 0
    for scale in scales:
        # Coarse grid: the larger of the two fields of view (in visible px) spans ~160 px.
        fov = max(hv, wv, max(hi, wi) / scale)
        fv = max(1.0, 2.0 ** math.ceil(math.log2(fov / 160.0)))
        if fv not in cache:
            vis_c = _shrink(vis0, fv) if fv > 1 else vis0
            cache[fv] = (vis_c.shape, _VisFFT(_orientation(vis_c)))
        (hc, wc), vis_fft = cache[fv]
        for angle in angles:
            if stop():
                raise _Stopped
            done += 1
            lin = _similarity(scale, angle) * fv  # canvas px -> IR coords (before offset)
            inv = np.linalg.inv(lin)
            corners = np.array([[0, 0], [0, wi - 1], [hi - 1, 0], [hi - 1, wi - 1]], float)
            canv = corners @ inv.T
            lo = np.floor(canv.min(0)) - 1
            shape = tuple(int(v) for v in np.ceil(canv.max(0) - lo) + 2)
            if shape[0] * shape[1] > 16 * hc * wc or min(shape) < 4:
                continue
            src, f_ir = ir_pyr.at(scale * fv)
            m = lin / f_ir
            off = lo @ lin.T / f_ir
            canvas = ndimage.affine_transform(
                src, m, offset=off, output_shape=shape, order=1, mode="constant", cval=np.nan
            )
            mask = np.isfinite(canvas)
            canvas = np.where(mask, canvas, 0.0)
            mask = ndimage.binary_erosion(mask, iterations=2)
            fir = _orientation(canvas) * mask
            score, d, cover = _correlate(vis_fft, fir, mask, min_overlap)
            if score is None:
                continue
            # canvas px q <-> IR lin @ (q + lo) ; visible coarse px p = q + d <-> visible fv * p
            ir_lin = _similarity(scale, angle)
            trans = lin @ lo - lin @ np.asarray(d, float)
            mat = np.eye(3)
            mat[:2, :2] = ir_lin
            mat[:2, 2] = trans
            results.append((score, scale, angle, mat, cover))
        progress("search", done / total)
    results.sort(key=lambda r: -r[0])
    return results


def _correlate(vis_fft, fir, mask, min_overlap):
    """Best orientation-correlation significance over all shifts d (canvas q ↔ visible q + d).

    ``vis_fft(size)`` gives the cached transforms of the visible side for an FFT ``size``.
    """
    hc, wc = fir.shape
    hv, wv, size, fv, fv2, ones = vis_fft((hc, wc))
    axes = (0, 1)
    fc = sfft.fft2(fir, size, axes=axes, workers=-1)
    corr = sfft.ifft2(fv * np.conj(fc), workers=-1).real
    fm = sfft.rfft2(mask.astype(np.float32), size, workers=-1)
    fc2 = sfft.rfft2((fir.real**2 + fir.imag**2).astype(np.float32), size, workers=-1)
    ev = sfft.irfft2(fv2 * np.conj(fm), size, workers=-1)
    ec = sfft.irfft2(ones * np.conj(fc2), size, workers=-1)
    n = sfft.irfft2(ones * np.conj(fm), size, workers=-1)
    smaller = min(hv * wv, float(mask.sum()))
    if smaller < 16:
        return None, None, None
    ok = n >= min_overlap * smaller
    # Normalised correlation times sqrt(overlap): its significance against chance (a random
    # alignment scores ~N(0, 1)), so that small overlaps do not win by luck.
    with np.errstate(invalid="ignore", divide="ignore"):
        # Overlaps with hardly any edges on one side do not count as perfect matches.
        floor = 0.05 * np.maximum(n, 1.0)
        score = corr / np.sqrt(np.maximum(ev, floor) * np.maximum(ec, floor))
        score *= np.sqrt(np.maximum(n, 0.0))
    score = np.where(ok, score, -np.inf)
    idx = np.unravel_index(int(np.argmax(score)), score.shape)
    if not np.isfinite(score[idx]):
        return None, None, None
    # Shifts run from -(hc - 1) to hv - 1 (rows), wrapped around by the FFT.
    d = [i if i <= lim - 1 else i - s for i, s, lim in zip(idx, size, (hv, wv), strict=True)]
    return float(score[idx]), d, float(n[idx] / smaller)


class _VisFFT:
    """The visible side's transforms for :func:`_correlate`, cached per FFT size."""

    def __init__(self, fvis):
        self.fvis = fvis
        self.cache = {}

    def __call__(self, canvas_shape):
        hv, wv = self.fvis.shape
        size = tuple(sfft.next_fast_len(a + b) for a, b in zip((hv, wv), canvas_shape, strict=True))
        size = tuple(-(-s // 16) * 16 for s in size)  # fewer distinct sizes to cache
        if size not in self.cache:
            f = self.fvis
            self.cache[size] = (
                hv,
                wv,
                size,
                sfft.fft2(f, size, workers=-1),
                sfft.rfft2((f.real**2 + f.imag**2).astype(np.float32), size, workers=-1),
                sfft.rfft2(np.ones((hv, wv), np.float32), size, workers=-1),
            )
        return self.cache[size]


# --------------------------------------------------------------------------------------------
# Refinement with SimpleITK (Mattes mutual information)


_SWAP = np.array([[0.0, 1.0], [1.0, 0.0]])


def _sitk_image(plane: np.ndarray, factor: float):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(plane, dtype=np.float32))
    img.SetSpacing((factor, factor))
    return img


def _to_sitk(mat: np.ndarray, kind: str, centre_xy):
    import SimpleITK as sitk

    a = _SWAP @ mat[:2, :2] @ _SWAP
    t = _SWAP @ mat[:2, 2]
    c = np.asarray(centre_xy, float)
    if kind == "translation":
        tx = sitk.TranslationTransform(2)
        # keep only the translation part at the centre
        tx.SetOffset(tuple(a @ c + t - c))
        return tx
    if kind == "similarity":
        tx = sitk.Similarity2DTransform()
        tx.SetCenter(tuple(c))
        scale = math.sqrt(abs(np.linalg.det(a)))
        angle = math.atan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1])
        tx.SetScale(scale)
        tx.SetAngle(angle)
        tx.SetTranslation(tuple(a @ c + t - c))
        return tx
    tx = sitk.AffineTransform(2)
    tx.SetCenter(tuple(c))
    tx.SetMatrix(tuple(a.ravel()))
    tx.SetTranslation(tuple(a @ c + t - c))
    return tx


def _from_sitk(tx) -> np.ndarray:
    import SimpleITK as sitk

    dim = 2
    kind = tx.GetName()
    if kind == "TranslationTransform":
        a = np.eye(2)
        off = np.array(sitk.TranslationTransform(tx).GetOffset())
        t = off
    else:
        if kind == "Similarity2DTransform":
            tx = sitk.Similarity2DTransform(tx)
        elif kind == "AffineTransform":
            tx = sitk.AffineTransform(tx)
        a = np.array(tx.GetMatrix()).reshape(dim, dim)
        c = np.array(tx.GetCenter())
        t = np.array(tx.GetTranslation()) + c - a @ c
    mat = np.eye(3)
    mat[:2, :2] = _SWAP @ a @ _SWAP
    mat[:2, 2] = _SWAP @ t
    return mat


def _method(fixed_spacing: float, iterations: int, *, bins: int = 32, sampling=1.0):
    import SimpleITK as sitk

    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    per_level = np.atleast_1d(np.asarray(sampling, dtype=float))
    if (per_level < 1.0).any():
        # A regular grid of samples, each jittered inside its pixel (seeded: reproducible).
        reg.SetMetricSamplingStrategy(reg.REGULAR)
        reg.SetMetricSamplingPercentagePerLevel([float(p) for p in per_level], 20221)
    else:
        reg.SetMetricSamplingStrategy(reg.NONE)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0 * fixed_spacing,
        minStep=0.001 * fixed_spacing,
        numberOfIterations=iterations,
        relaxationFactor=0.7,
        gradientMagnitudeTolerance=1e-10,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    return reg


def _refine(
    fixed, moving, mat, kind, *, shrink, sigmas, iterations, stop, step=1.0, full_last=False
):
    """Mattes MI refinement of ``mat`` (a ``kind`` transform) over a SimpleITK pyramid."""
    import SimpleITK as sitk

    size = fixed.GetSize()
    sp = fixed.GetSpacing()[0]
    centre = ((size[0] - 1) * sp / 2.0, (size[1] - 1) * sp / 2.0)
    tx = _to_sitk(mat, kind, centre)
    # About SAMPLES pixels per level: all of them on small grids.
    npx = float(size[0] * size[1])
    sampling = [min(1.0, SAMPLES * lv * lv / npx) for lv in shrink]
    if full_last:  # the last level decides the precision: more samples
        sampling[-1] = min(1.0, FINAL_SAMPLES / npx)
    reg = _method(step * sp * shrink[0] / 2.0, iterations, sampling=sampling)
    reg.SetShrinkFactorsPerLevel(list(shrink))
    reg.SetSmoothingSigmasPerLevel(list(sigmas))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    reg.SetInitialTransform(tx, inPlace=True)
    count = [0]

    def _tick():
        count[0] += 1
        if stop():
            reg.StopRegistration()

    reg.AddCommand(sitk.sitkIterationEvent, _tick)
    reg.Execute(fixed, moving)
    if stop():
        raise _Stopped
    return (
        _from_sitk(tx),
        -float(reg.GetMetricValue()),
        count[0],
        reg.GetOptimizerStopConditionDescription(),
    )


class _Judge:
    """Mattes MI of a matrix on the working grids, both smoothed by one working pixel."""

    def __init__(self, fixed, moving):
        import SimpleITK as sitk

        sp = fixed.GetSpacing()[0]
        self.fixed = sitk.SmoothingRecursiveGaussian(fixed, sp)
        self.moving = sitk.SmoothingRecursiveGaussian(moving, sp)
        size = fixed.GetSize()
        self.centre = ((size[0] - 1) * sp / 2.0, (size[1] - 1) * sp / 2.0)
        self.reg = _method(sp, 1)

    def __call__(self, mat: np.ndarray) -> float:
        self.reg.SetInitialTransform(_to_sitk(mat, "affine", self.centre))
        try:
            return -float(self.reg.MetricEvaluate(self.fixed, self.moving))
        except RuntimeError:
            return float("-inf")


def _tile_matches(vis_w, fw, moving, mat, grid, stop):
    """Correspondences from translation-only MI refinements of ``grid`` × ``grid`` tiles.

    Each tile of the visible working plane inside the overlap is registered by a translation
    ``d`` on top of ``mat``; its centre ``c`` then matches infrared ``mat(c + d)``.
    Returns ``(visible_points, infrared_points)`` as ``(N, 2)`` (row, col) arrays.
    """
    import SimpleITK as sitk

    h, w = vis_w.shape
    hi, wi = _size_rc(moving)
    rr, cc = np.mgrid[0:h, 0:w]
    pts = np.c_[rr.ravel() * fw, cc.ravel() * fw]
    ir_pts = _apply(mat, pts)
    inside = (
        (ir_pts[:, 0] > 2) & (ir_pts[:, 0] < hi - 3) & (ir_pts[:, 1] > 2) & (ir_pts[:, 1] < wi - 3)
    ).reshape(h, w)
    if not inside.any():
        return np.empty((0, 2)), np.empty((0, 2))
    rows = np.flatnonzero(inside.any(1))
    cols = np.flatnonzero(inside.any(0))
    r_edges = np.linspace(rows[0], rows[-1] + 1, grid + 1).astype(int)
    c_edges = np.linspace(cols[0], cols[-1] + 1, grid + 1).astype(int)
    smoothed = sitk.SmoothingRecursiveGaussian(moving, fw)
    vis_pts, ir_out = [], []
    for i in range(grid):
        for j in range(grid):
            if stop():
                raise _Stopped
            r0, r1, c0, c1 = r_edges[i], r_edges[i + 1], c_edges[j], c_edges[j + 1]
            if min(r1 - r0, c1 - c0) < 12 or inside[r0:r1, c0:c1].mean() < 0.6:
                continue
            tile = vis_w[r0:r1, c0:c1]
            if float(np.std(tile)) < 1e-3:
                continue
            centre = np.array([(r0 + r1 - 1) / 2.0, (c0 + c1 - 1) / 2.0]) * fw
            local = _local_affine(mat, centre)
            fixed = _sitk_image(tile, fw)
            fixed.SetOrigin((c0 * fw, r0 * fw))
            fixed = sitk.SmoothingRecursiveGaussian(fixed, fw)
            reg = _method(fw, 60)
            reg.SetMovingInitialTransform(_to_sitk(local, "affine", (0.0, 0.0)))
            tx = sitk.TranslationTransform(2)
            reg.SetInitialTransform(tx, inPlace=True)
            try:
                reg.Execute(fixed, smoothed)
            except RuntimeError:
                continue
            d = np.array(tx.GetOffset())[::-1]  # (row, col)
            if np.abs(d).max() > 4 * fw:
                continue
            vis_pts.append(centre)
            ir_out.append(_apply(local, (centre + d)[None])[0])
    return np.array(vis_pts).reshape(-1, 2), np.array(ir_out).reshape(-1, 2)


def _local_affine(mat: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The affine map that agrees with ``mat`` (maybe projective) to first order at ``at``."""
    if np.allclose(mat[2], (0.0, 0.0, 1.0)):
        return mat
    x = np.append(at, 1.0)
    den = mat[2] @ x
    f = (mat[:2] @ x) / den
    jac = (mat[:2, :2] - np.outer(f, mat[2, :2])) / den
    out = np.eye(3)
    out[:2, :2] = jac
    out[:2, 2] = f - jac @ at
    return out


def _size_rc(image) -> tuple[float, float]:
    """The extent of a SimpleITK plane in original pixel units, (rows, cols)."""
    sx, sy = image.GetSize()
    sp = image.GetSpacing()[0]
    return sy * sp, sx * sp


def _apply(mat: np.ndarray, pts: np.ndarray) -> np.ndarray:
    homo = np.c_[pts, np.ones(len(pts))] @ mat.T
    return homo[:, :2] / homo[:, 2:3]


def _fit(src: np.ndarray, dst: np.ndarray, model: str) -> np.ndarray | None:
    """Least-squares ``model`` matrix mapping ``src`` to ``dst`` (normalised DLT if projective)."""
    n = len(src)
    if n < (4 if model == "projective" else 3):
        return None
    mean, spread = src.mean(0), src.std() + 1e-9
    norm = np.array(
        [[1 / spread, 0, -mean[0] / spread], [0, 1 / spread, -mean[1] / spread], [0, 0, 1]]
    )
    dmean, dspread = dst.mean(0), dst.std() + 1e-9
    dnorm = np.array(
        [[1 / dspread, 0, -dmean[0] / dspread], [0, 1 / dspread, -dmean[1] / dspread], [0, 0, 1]]
    )
    a = _apply(norm, src)
    b = _apply(dnorm, dst)
    if model == "projective":
        rows = []
        for (x, y), (u, v) in zip(a, b, strict=True):
            rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
            rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
        _, _, vt = np.linalg.svd(np.asarray(rows))
        m = vt[-1].reshape(3, 3)
    else:
        design = np.c_[a, np.ones(n)]
        sol, *_ = np.linalg.lstsq(design, b, rcond=None)
        m = np.eye(3)
        m[:2, :] = sol.T
    full = np.linalg.inv(dnorm) @ m @ norm
    if abs(full[2, 2]) < 1e-12:
        return None
    return full / full[2, 2]


def _robust_fit(src, dst, model, fw):
    """:func:`_fit`, again without the matches that disagree with the first fit."""
    need = 4 if model == "projective" else 3
    keep = np.ones(len(src), bool)
    fitted = None
    for _ in range(3):
        if keep.sum() < need + 2:
            return None
        fitted = _fit(src[keep], dst[keep], "projective" if model == "projective" else "affine")
        if fitted is None:
            return None
        res = np.hypot(*(_apply(fitted, src) - dst).T)
        limit = max(3.0 * float(np.median(res[keep])), 0.3 * fw)
        new = res <= limit
        if (new == keep).all():
            break
        keep = new
    return fitted


def _moved(before: np.ndarray, after: np.ndarray, shape) -> float:
    """The largest distance (visible px) between where two matrices put the frame's corners."""
    h, w = shape
    corners = np.array([[0, 0], [0, w - 1], [h - 1, 0], [h - 1, w - 1]], float)
    a = np.linalg.inv(before)
    b = np.linalg.inv(after)
    ir = _apply(before, corners)
    return float(np.abs(_apply(a, ir) - _apply(b, ir)).max())


def _distinct(results, k):
    """The ``k`` best search results that are not near-duplicates of a better one."""
    kept = []
    for r in results:
        if all(
            abs(math.log(r[1] / q[1])) > 0.2
            or abs(r[2] - q[2]) > 0.1
            or np.abs(r[3][:2, 2] - q[3][:2, 2]).max() > 8 * r[1]
            for q in kept
        ):
            kept.append(r)
        if len(kept) == k:
            break
    return kept


def estimate(
    infrared: np.ndarray,
    visible: np.ndarray,
    *,
    model: str = "affine",
    scale_hint: float | None = None,
    progress: Callable[[str, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **settings,
) -> AutoEstimate:
    """Estimate the matrix that maps a visible pixel to the infrared pixel seen there.

    Parameters
    ----------
    infrared, visible : ndarray
        2-D finite float planes of any range and shape (normalised here; not modified).
    model : str
        ``"translation"``, ``"similarity"``, ``"affine"`` or ``"projective"``.
    scale_hint : float, optional
        Infrared pixels per visible pixel, if known: the search then covers only ±16 % around
        it (faster, and safe from look-alike scales). Without it the search covers 1/8.5 to 8.5.
    progress : callable, optional
        ``progress(stage, fraction)`` with ``stage`` one of ``"search"``, ``"refine"``,
        ``"tiles"`` and ``fraction`` in ``[0, 1]`` within that stage.
    should_stop : callable, optional
        Polled often; when it returns True the estimate stops and returns ``converged=False``
        with the message ``"stopped"``.
    **settings
        ``min_overlap`` (0.3: the smallest fraction of the smaller frame the search
        considers), ``candidates`` (2: starts refined), ``work_side`` (1024: the largest side of
        the visible working grid), ``tiles`` (4: tiles per side for affine/projective).

    Returns
    -------
    AutoEstimate
        ``converged`` is False (with the reason in ``message``) when the pair shares no
        structure (search significance below :data:`MIN_SIGNIFICANCE`), when every start or the
        refinement failed, or when it was stopped; ``score`` is the Mattes mutual information
        at the optimum (:data:`METRIC`, higher is better).
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}")
    report = progress or (lambda stage, fraction: None)
    stop = should_stop or (lambda: False)
    min_overlap = float(settings.pop("min_overlap", 0.3))
    candidates_n = int(settings.pop("candidates", 2))
    work_side = int(settings.pop("work_side", 1024))
    grid = int(settings.pop("tiles", 4))
    ir = _normalise(infrared)
    vis = _normalise(visible)
    if model == "translation":
        scales, angles = np.array([1.0]), np.array([0.0])
    else:
        if scale_hint is None:
            scales = np.exp(np.arange(math.log(1 / 8.5), math.log(8.5), math.log(1.15)))
        else:
            scales = scale_hint * np.exp(np.arange(-2, 3) * math.log(1.08))
        angles = np.radians(np.arange(-10, 10.1, 5.0))
    try:
        return _estimate(
            ir, vis, model, scales, angles, min_overlap, candidates_n, work_side, grid, report, stop
        )
    except _Stopped:
        return AutoEstimate(np.eye(3), float("-inf"), METRIC, False, 0, "stopped")


def _estimate(
    ir, vis, model, scales, angles, min_overlap, candidates_n, work_side, grid, report, stop
):
    t0 = time.perf_counter()
    timing = {}
    ir_pyr = _Pyramid(ir)
    vis_pyr = _Pyramid(vis)
    found = _global_search(ir_pyr, vis_pyr, scales, angles, min_overlap, report, stop)
    timing["search"] = round(time.perf_counter() - t0, 2)
    if not found:
        return AutoEstimate(np.eye(3), float("-inf"), METRIC, False, 0, "no overlap found")
    for r in found[:5]:
        _DEBUG(f"search {r[0]:.1f} s={r[1]:.3f} a={math.degrees(r[2]):+.1f}", r[3], r[3])
    cands = _distinct(found, candidates_n)
    significance = cands[0][0]
    if significance < MIN_SIGNIFICANCE:
        return AutoEstimate(
            cands[0][3],
            float("-inf"),
            METRIC,
            False,
            0,
            f"the two images share no structure: the best alignment's edge-orientation "
            f"significance is {significance:.1f} (chance gives about 4 to 6; at least "
            f"{MIN_SIGNIFICANCE:g} needed)",
        )
    scale = cands[0][1]
    # Working grids: the visible at the infrared's pixel size (never finer than its own, never
    # larger than work_side), the infrared no finer than that.
    fw = max(1.0, max(vis.shape) / work_side, 0.5 / scale)
    fixed = _sitk_image(_shrink(vis, fw), fw)
    fi = max(1.0, 0.5 * scale * fw)
    moving = _sitk_image(_shrink(ir, fi), fi)
    kind0 = "translation" if model == "translation" else "similarity"
    best = None
    cands = [c for c in cands if c[0] >= 0.75 * cands[0][0]]
    # Coarsest level: at most 8 times coarser, and the visible ~48 px on its short side.
    # (SimpleITK shrinks both images by the same factor: the infrared keeps ~32 px too.)
    short = min(min(fixed.GetSize()) / 48.0, min(moving.GetSize()) / 32.0)
    coarse = int(max(1, min(8, 2 ** math.floor(math.log2(max(short, 1.0))))))
    levels = (coarse, max(1, coarse // 2))
    # A start may move by a few of the search's coarse pixels; more means it ran away.
    leash = 0.08 * max(vis.shape)
    for k, cand in enumerate(cands):
        try:
            mat, mi, it, msg = _refine(
                fixed,
                moving,
                cand[3],
                kind0,
                shrink=levels,
                sigmas=tuple(lv / 2.0 for lv in levels),
                iterations=100,
                stop=stop,
            )
        except RuntimeError:
            continue
        if _moved(cand[3], mat, vis.shape) > leash:
            continue
        _DEBUG(f"cand {k} search {cand[0]:.1f} s={cand[1]:.3f} -> mi {mi:.4f}", cand[3], mat)
        if best is None or mi > best[1]:
            best = (mat, mi, it, msg, cand)
        report("refine", (k + 1) / len(cands))
    timing["candidates"] = round(time.perf_counter() - t0, 2)
    if best is None:
        return AutoEstimate(np.eye(3), float("-inf"), METRIC, False, 0, "every start failed")
    mat = best[0]
    iters = best[2]
    stages = [(kind0, (2, 1), (1, 1), 1.0)]
    judge = _Judge(fixed, moving)
    mi = judge(mat)
    for kind, shrink, sigmas, step in stages:
        try:
            new, _, it, msg = _refine(
                fixed,
                moving,
                mat,
                kind,
                shrink=shrink,
                sigmas=sigmas,
                iterations=200,
                stop=stop,
                step=step,
                full_last=True,
            )
        except RuntimeError as exc:
            return AutoEstimate(mat, best[1], METRIC, False, iters, f"{kind}: {exc}")
        new_mi = judge(new)
        _DEBUG(f"stage {kind} mi {mi:.4f} -> {new_mi:.4f} {msg[:50]}", mat, new)
        if new_mi > mi:
            mat, mi = new, new_mi
        iters += it
    timing["refine"] = round(time.perf_counter() - t0, 2)
    if model in ("affine", "projective"):
        vis_w = _shrink(vis, fw)
        passes = 3
        for rnd in range(passes):
            src, dst = _tile_matches(vis_w, fw, moving, mat, grid, stop)
            report("tiles", (rnd + 1) / passes)
            fitted = _robust_fit(src, dst, model, fw)
            _DEBUG(f"tiles {len(src)} {model}", mat, fitted if fitted is not None else mat)
            if fitted is None:
                return AutoEstimate(
                    mat,
                    mi,
                    METRIC,
                    False,
                    iters,
                    f"too few structured tiles in the overlap for {model} ({len(src)})",
                )
            if model == "affine":
                fitted_mi = judge(fitted)
                if fitted_mi <= mi:  # the similarity explains the pair as well: keep it
                    break
                mi = fitted_mi
            moved = _moved(mat, fitted, vis.shape)
            mat = fitted
            if moved < 0.05 * fw:  # settled
                break
        report("tiles", 1.0)
        timing["tiles"] = round(time.perf_counter() - t0, 2)
    timing["total"] = round(time.perf_counter() - t0, 2)
    _DEBUG(f"timing {timing} fw={fw:.2f} fi={fi:.2f}", mat, mat)
    if not np.isfinite(mi):
        return AutoEstimate(mat, mi, METRIC, False, iters, "the refined alignment has no overlap")
    return AutoEstimate(
        mat,
        mi,
        METRIC,
        True,
        iters,
        f"search significance {significance:.1f}; {msg.split(':')[-1].strip()}",
    )
