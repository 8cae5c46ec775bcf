"""Registration from corresponding points (landmarks), by least squares.

The transform fitted is the one that carries the infrared points onto the visible points, so
that what is minimised is the residual in *visible* pixels (the grid everything is fused on);
the :class:`Registration` holds its inverse (visible → infrared).
"""

from __future__ import annotations

import itertools

import numpy as np

from ._registration import Registration, RegistrationError, check_model

__all__ = ["MIN_POINTS", "fit_points", "register_landmarks"]

#: The fewest point pairs each model needs.
MIN_POINTS = {"translation": 1, "similarity": 2, "affine": 3, "projective": 4}

#: Points closer than this (relative to their spread) to a common line count as collinear.
_COLLINEAR_TOL = 1e-3


def _points(name: str, value) -> np.ndarray:
    try:
        pts = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (N, 2) numbers (row, col), got {value!r}") from None
    if pts.ndim == 1 and pts.size == 2:
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2) (row, col), got {pts.shape}")
    if not np.isfinite(pts).all():
        bad = np.flatnonzero(~np.isfinite(pts).all(axis=1))
        raise ValueError(f"{name} has NaN or infinite coordinates (points {bad.tolist()})")
    return pts


def _spread(points: np.ndarray) -> np.ndarray:
    """Singular values of the centred points (the extent along their two main axes)."""
    return np.linalg.svd(points - points.mean(axis=0), compute_uv=False)


def _is_collinear(points: np.ndarray) -> bool:
    s = _spread(points)
    return s[0] == 0 or s[-1] <= _COLLINEAR_TOL * s[0]


def _check_geometry(model: str, name: str, pts: np.ndarray) -> None:
    if model == "similarity" and _spread(pts)[0] == 0:
        raise RegistrationError(
            f"{name}: the similarity model needs at least 2 distinct points, all are at "
            f"{pts[0].tolist()}"
        )
    if model in ("affine", "projective") and _is_collinear(pts):
        raise RegistrationError(
            f"{name}: the {model} model needs points that are not all on one line (the "
            f"{len(pts)} points given are collinear)"
        )
    if model == "projective" and len(pts) == 4:
        for triple in itertools.combinations(range(4), 3):
            if _is_collinear(pts[list(triple)]):
                raise RegistrationError(
                    f"{name}: with 4 points the projective model needs no 3 on one line "
                    f"(points {list(triple)} are collinear)"
                )


def _normalising(points: np.ndarray) -> np.ndarray:
    """Similarity that moves the centroid to 0 and the mean distance to sqrt(2) (Hartley)."""
    centre = points.mean(axis=0)
    dist = np.sqrt(((points - centre) ** 2).sum(axis=1)).mean()
    s = np.sqrt(2.0) / dist if dist > 0 else 1.0
    return np.array([[s, 0, -s * centre[0]], [0, s, -s * centre[1]], [0, 0, 1.0]])


def fit_points(source, target, model: str = "affine") -> np.ndarray:
    """The least-squares transform of ``model`` carrying ``source`` onto ``target`` points.

    Returns a 3 × 3 homogeneous matrix (``(row, col)`` order). Translation, similarity
    (rotation + uniform scale, no reflection) and affine minimise the squared distances in the
    target frame exactly; projective is the normalised direct linear transform (Hartley), exact
    for noise-free points.
    """
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    n = len(src)
    if model == "translation":
        t = (dst - src).mean(axis=0)
        return np.array([[1.0, 0, t[0]], [0, 1.0, t[1]], [0, 0, 1.0]])
    if model == "similarity":
        # target_r = a r - b c + tr ; target_c = b r + a c + tc
        design = np.zeros((2 * n, 4))
        design[0::2] = np.c_[src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)]
        design[1::2] = np.c_[src[:, 1], src[:, 0], np.zeros(n), np.ones(n)]
        a, b, tr, tc = np.linalg.lstsq(design, dst.reshape(-1), rcond=None)[0]
        return np.array([[a, -b, tr], [b, a, tc], [0, 0, 1.0]])
    if model == "affine":
        design = np.c_[src, np.ones(n)]
        params = np.linalg.lstsq(design, dst, rcond=None)[0]  # (3, 2)
        return np.vstack([params.T, [0.0, 0.0, 1.0]])
    if model == "projective":
        t_src, t_dst = _normalising(src), _normalising(dst)
        s = np.c_[src, np.ones(n)] @ t_src.T
        d = np.c_[dst, np.ones(n)] @ t_dst.T
        rows = np.zeros((2 * n, 9))
        for k in range(n):
            x, y, w = s[k]
            u, v, q = d[k]
            rows[2 * k] = [0, 0, 0, -q * x, -q * y, -q * w, v * x, v * y, v * w]
            rows[2 * k + 1] = [q * x, q * y, q * w, 0, 0, 0, -u * x, -u * y, -u * w]
        _, sing, vt = np.linalg.svd(rows)
        if len(sing) >= 8 and sing[7] <= 1e-10 * sing[0]:
            raise RegistrationError("the points do not determine a projective transform")
        h = vt[-1].reshape(3, 3)
        matrix = np.linalg.inv(t_dst) @ h @ t_src
        return matrix / matrix[2, 2]
    raise ValueError(f"unknown model {model!r}")


def register_landmarks(
    infrared_points,
    visible_points,
    *,
    model: str = "affine",
    infrared_shape=None,
    visible_shape=None,
) -> Registration:
    """Register the infrared image onto the visible one from corresponding points.

    Parameters
    ----------
    infrared_points, visible_points : array_like
        ``(N, 2)`` pixel coordinates ``(row, col)`` (napari's order; pixel centres at integers),
        point ``k`` of one image corresponding to point ``k`` of the other.
    model : str
        ``"translation"`` (≥ 1 pair), ``"similarity"`` (≥ 2 distinct), ``"affine"`` (≥ 3, not
        all on one line) or ``"projective"`` (≥ 4, no 3 of 4 on one line).
    infrared_shape, visible_shape : (int, int), optional
        The images' ``(height, width)``; needed to warp, measure the overlap or save a file
        that refuses other shapes (:meth:`Registration.with_shapes` can add them later).

    Returns
    -------
    Registration
        ``residuals``: per pair, the distance in visible pixels between the visible point and
        its infrared point mapped onto the visible grid (0 for noise-free points with at most
        the model's minimum count); ``rms`` their root mean square.

    Raises
    ------
    ValueError
        Points that are not ``(N, 2)`` finite numbers, or counts that differ.
    RegistrationError
        Fewer pairs than the model needs, or points in a degenerate layout (collinear).
    """
    check_model(model)
    ir = _points("infrared points", infrared_points)
    vis = _points("visible points", visible_points)
    if len(ir) != len(vis):
        raise ValueError(
            f"{len(ir)} infrared points but {len(vis)} visible points: give one visible point "
            "per infrared point, in the same order"
        )
    need = MIN_POINTS[model]
    if len(ir) < need:
        raise RegistrationError(
            f"the {model} model needs at least {need} point pair{'s' if need > 1 else ''}, "
            f"got {len(ir)}"
        )
    _check_geometry(model, "infrared points", ir)
    _check_geometry(model, "visible points", vis)
    forward = fit_points(ir, vis, model)  # infrared → visible
    if not np.isfinite(forward).all() or abs(np.linalg.det(forward)) < 1e-12:
        raise RegistrationError(f"the {model} fit of these points is degenerate (not invertible)")
    matrix = np.linalg.inv(forward)
    mapped = np.c_[ir, np.ones(len(ir))] @ forward.T
    with np.errstate(divide="ignore", invalid="ignore"):
        mapped = mapped[:, :2] / mapped[:, 2:3]
    residuals = np.sqrt(((mapped - vis) ** 2).sum(axis=1))
    if model != "projective":
        matrix[2] = (0.0, 0.0, 1.0)  # exact, for the model check
    return Registration(
        matrix=matrix,
        model=model,
        infrared_shape=infrared_shape,
        visible_shape=visible_shape,
        residuals=residuals,
        landmarks=(ir, vis),
        method="landmarks",
    )
