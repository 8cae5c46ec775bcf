"""Stage 1 of the automatic estimator (:mod:`._auto`): working planes, pyramids, and the global
search over scale × roll with the translation found by FFT correlation of edge orientations."""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft
from scipy import ndimage


def _DEBUG(*args) -> None:  # a hook for tuning scripts
    return None


class _Stopped(Exception):
    pass


# The search's and the check's FFTs run on one thread, the search's trials one after the
# other: on 2 cores that took 0.31 s for a full-HD pair's search, where two trials at a time
# took 0.37 s and multithreaded FFTs 0.45 to 0.62 s (their transforms are small, the threads'
# overhead is not).


# --------------------------------------------------------------------------------------------
# Planes: normalisation and resampling (a plane at factor f: its pixel k sees coordinate k * f)


def _normalise(img: np.ndarray) -> np.ndarray:
    """``img`` as float32 from 0 to 1 between its 0.5th and 99.5th percentiles (taken on every
    k-th pixel of each axis above :data:`_PERCENTILE_PIXELS`: a 12-megapixel frame took 0.2 s)."""
    img = np.asarray(img)
    step = max(1, math.ceil(math.sqrt(img.size / _PERCENTILE_PIXELS)))
    lo, hi = (float(v) for v in np.percentile(img[::step, ::step], (0.5, 99.5)))
    if hi <= lo:
        lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        return np.zeros(img.shape, dtype=np.float32)
    out = img.astype(np.float32) if img.dtype != np.float64 else img.astype(np.float64)
    out = (out - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False)


#: Above this many pixels the normalisation's percentiles are taken on a strided subsample.
_PERCENTILE_PIXELS = 4_000_000


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

    def octave(self, pixel: float) -> int:
        """The coarsest octave ``k`` whose pixel ``2**k`` is at most ``pixel`` (level-0 px)."""
        k = 0
        while k + 1 < len(self.levels) and 2 ** (k + 1) <= pixel:
            k += 1
        return k

    def blurred(self, k: int, sigma: float, mode: str = "nearest") -> np.ndarray:
        """Octave ``k`` blurred to a Gaussian of ``sigma`` level-0 px in all (the octaves' own
        blur counted: 0.85 px per halving, doubled at every octave)."""
        sigma2 = sigma**2 - 0.85**2 * (4.0**k - 1.0) / 3.0
        if sigma2 <= 0:
            return self.levels[k]
        return ndimage.gaussian_filter(self.levels[k], math.sqrt(sigma2) / 2**k, mode=mode)

    def shrink(self, factor: float) -> np.ndarray:
        """:func:`_shrink` of the plane, started from the coarsest octave no coarser than
        ``factor``: a 16-fold shrink of a full-HD frame costs a blur of 256 px instead of 2
        million."""
        k = self.octave(factor * (1 + 1e-9))
        if k == 0:
            return _shrink(self.levels[0], factor)
        img = self.blurred(k, 0.5 * math.sqrt(factor**2 - 1.0))
        rel = factor / 2**k
        if rel <= 1.0 + 1e-9:
            return img
        shape = tuple(int((s - 1) // factor) + 1 for s in self.levels[0].shape)
        return ndimage.affine_transform(
            img, (rel, rel), output_shape=shape, order=1, mode="nearest"
        )

    def at(self, factor: float) -> tuple[np.ndarray, float]:
        """The finest octave no finer than needed for pixels of ``factor`` and its own factor."""
        k = self.octave(factor * 1.01)
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
    hv, wv = vis_pyr.levels[0].shape
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
            cache[fv] = _VisFFT(_orientation(vis_pyr.shrink(fv)))
        for angle in angles:
            if stop():
                raise _Stopped
            found = _try(ir_pyr, cache[fv], scale, angle, fv, min_overlap)
            if found is not None:
                results.append(found)
            done += 1
        progress("search", done / total)
    results.sort(key=lambda r: -r[0])
    return results


def _try(ir_pyr, vis_fft, scale, angle, fv, min_overlap):
    """The best translation at one (scale, angle): ``(score, scale, angle, matrix, cover)``."""
    hc, wc = vis_fft.fvis.shape
    hi, wi = ir_pyr.levels[0].shape
    lin = _similarity(scale, angle) * fv  # canvas px -> IR coords (before offset)
    inv = np.linalg.inv(lin)
    corners = np.array([[0, 0], [0, wi - 1], [hi - 1, 0], [hi - 1, wi - 1]], float)
    canv = corners @ inv.T
    lo = np.floor(canv.min(0)) - 1
    shape = tuple(int(v) for v in np.ceil(canv.max(0) - lo) + 2)
    if shape[0] * shape[1] > 16 * hc * wc or min(shape) < 4:
        return None
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
        return None
    # canvas px q <-> IR lin @ (q + lo) ; visible coarse px p = q + d <-> visible fv * p
    trans = lin @ lo - lin @ np.asarray(d, float)
    mat = np.eye(3)
    mat[:2, :2] = _similarity(scale, angle)
    mat[:2, 2] = trans
    return (score, scale, angle, mat, cover)


def _correlate(vis_fft, fir, mask, min_overlap):
    """Best orientation-correlation significance over all shifts d (canvas q ↔ visible q + d).

    ``vis_fft(size)`` gives the cached transforms of the visible side for an FFT ``size``.
    """
    hc, wc = fir.shape
    hv, wv, size, fv, fv2 = vis_fft((hc, wc))
    smaller = min(hv * wv, float(mask.sum()))
    if smaller < 16:
        return None, None, None
    # The overlap's pixel count for every shift (a window sum: no FFT needed); only the shifts
    # that overlap enough are scored.
    n = _window_sums(mask, (hv, wv), size).ravel()
    at = np.flatnonzero(n >= min_overlap * smaller)
    if at.size == 0:
        return None, None, None
    n = n[at]
    fc = sfft.fft2(fir, size, axes=(0, 1))
    corr = sfft.ifft2(fv * np.conj(fc)).real.ravel()[at]
    fm = sfft.rfft2(mask.astype(np.float32), size)
    ev = sfft.irfft2(fv2 * np.conj(fm), size).ravel()[at]
    ec = _window_sums(fir.real**2 + fir.imag**2, (hv, wv), size).ravel()[at]
    # Normalised correlation times sqrt(overlap): its significance against chance (a random
    # alignment scores ~N(0, 1)), so that small overlaps do not win by luck.
    with np.errstate(invalid="ignore", divide="ignore"):
        # Overlaps with hardly any edges on one side do not count as perfect matches.
        floor = 0.05 * np.maximum(n, 1.0)
        score = corr / np.sqrt(np.maximum(ev, floor) * np.maximum(ec, floor))
        score *= np.sqrt(n)
    k = int(np.argmax(score))
    if not np.isfinite(score[k]):
        return None, None, None
    idx = np.unravel_index(at[k], size)
    # Shifts run from -(hc - 1) to hv - 1 (rows), wrapped around by the FFT.
    d = [i if i <= lim - 1 else i - s for i, s, lim in zip(idx, size, (hv, wv), strict=True)]
    return float(score[k]), d, float(n[k] / smaller)


def _window_sums(a: np.ndarray, window: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """For every shift ``d`` (laid out as :func:`_correlate`'s FFTs of ``size`` lay them out:
    0 … window − 1, then negative shifts wrapped), the sum of ``a[q]`` over the ``q`` that
    shift ``d`` puts inside a ``window`` (rows, cols) at the origin: ``Σ a[q] · 1[q + d in
    window]``, what the FFT correlation with a frame of ones gives, exactly, from a
    summed-area table."""
    table = np.zeros((a.shape[0] + 1, a.shape[1] + 1))
    np.cumsum(np.cumsum(a, axis=0, dtype=np.float64), axis=1, out=table[1:, 1:])
    bounds = []
    for extent, length, m in zip(a.shape, window, size, strict=True):
        d = np.arange(m)
        d[d >= length] -= m
        bounds.append((np.clip(-d, 0, extent), np.clip(length - d, 0, extent)))
    (r0, r1), (c0, c1) = bounds
    rows = table[r1] - table[r0]  # the window's rows summed, per row shift
    return rows[:, c1] - rows[:, c0]


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
                sfft.fft2(f, size),
                sfft.rfft2((f.real**2 + f.imag**2).astype(np.float32), size),
            )
        return self.cache[size]
