"""Stages 2 and 3 of the automatic estimator (:mod:`._auto`): refinement with SimpleITK's
Mattes mutual information, and the tile fit of affine and projective models."""

from __future__ import annotations

import math

import numpy as np

from ._search import _Stopped

#: Pixels sampled by the mutual information per pyramid level (all of them on smaller grids).
SAMPLES = 100_000

#: Pixels sampled at the very last level (every pixel of grids up to that size).
FINAL_SAMPLES = 250_000

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


def _coordinates(t: np.ndarray, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
    """Where points ``(rr, cc)`` (flat arrays) fall through the 3 × 3 matrix ``t``."""
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
