"""Pixel-grid geometry of a registration: source coordinates, resampling, masks, rectangles.

Conventions (the same as napari's and scipy.ndimage's): coordinates are ``(row, col)``, pixel
centres sit at integer coordinates, and pixel ``(r, c)`` covers ``[r - 0.5, r + 0.5) ×
[c - 0.5, c + 0.5)``. A 3 × 3 homogeneous ``matrix`` maps a *target* pixel coordinate
``(r, c, 1)`` to the *source* coordinate seen there (the "pull" direction of resampling). No
napari, Qt or torch here.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Rows per chunk when coordinates are computed explicitly (projective maps, masks).
_CHUNK_ROWS = 256


def is_affine(matrix: np.ndarray) -> bool:
    """Whether the last row of ``matrix`` is ``[0, 0, 1]`` (no perspective)."""
    return bool(np.allclose(matrix[2], (0.0, 0.0, 1.0), rtol=0.0, atol=1e-12))


def apply_matrix(matrix: np.ndarray, points) -> np.ndarray:
    """Map ``(N, 2)`` ``(row, col)`` points through a homogeneous ``matrix``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    homo = np.c_[pts, np.ones(len(pts))] @ matrix.T
    return homo[:, :2] / homo[:, 2:3]


def _chunk_coords(matrix: np.ndarray, rows: np.ndarray, width: int) -> tuple[np.ndarray, ...]:
    """Source ``(row, col, w)`` of the target pixels in ``rows`` × ``range(width)``."""
    rr = rows[:, None].astype(np.float64)
    cc = np.arange(width, dtype=np.float64)[None, :]
    out = []
    for k in range(3):
        out.append(matrix[k, 0] * rr + matrix[k, 1] * cc + matrix[k, 2])
    return tuple(out)


def _projected_chunks(matrix: np.ndarray, height: int, width: int):
    """Yield ``(rows, r, c, w)`` chunk by chunk: source ``(r, c) = (row, col) / w`` of each target
    pixel in ``rows`` × ``range(width)`` (``inf``/``nan`` where ``w`` is 0), and ``w`` itself."""
    for start in range(0, height, _CHUNK_ROWS):
        rows = np.arange(start, min(start + _CHUNK_ROWS, height))
        r, c, w = _chunk_coords(matrix, rows, width)
        with np.errstate(divide="ignore", invalid="ignore"):
            r, c = r / w, c / w
        yield rows, r, c, w


def valid_mask(matrix: np.ndarray, source_shape, target_shape) -> np.ndarray:
    """Target pixels whose centre maps inside the source frame (and in front, if projective).

    The source frame is ``[-0.5, H - 0.5) × [-0.5, W - 0.5)``: the area its pixels cover.
    """
    height, width = (int(s) for s in target_shape)
    src_h, src_w = (int(s) for s in source_shape)
    mask = np.empty((height, width), dtype=bool)
    for rows, r, c, w in _projected_chunks(matrix, height, width):
        inside = (w > 0) & (r >= -0.5) & (r < src_h - 0.5) & (c >= -0.5) & (c < src_w - 0.5)
        mask[rows] = inside
    return mask


def _resample_plane(
    plane: np.ndarray, matrix: np.ndarray, target_shape, order: int, dtype
) -> np.ndarray:
    """``plane`` (2-D) sampled at the source coordinates of each target pixel.

    Beyond the source frame the nearest edge value is used (``mode="nearest"``); callers mask
    those pixels with :func:`valid_mask`.
    """
    height, width = (int(s) for s in target_shape)
    source = plane.astype(dtype, copy=False)
    if is_affine(matrix):
        return ndimage.affine_transform(
            source,
            matrix[:2, :2],
            offset=matrix[:2, 2],
            output_shape=(height, width),
            output=dtype,
            order=order,
            mode="nearest",
        )
    if order > 1:  # spline coefficients once for the whole plane, not per chunk
        source = ndimage.spline_filter(source, order=order, output=dtype, mode="nearest")
    out = np.empty((height, width), dtype=dtype)
    for rows, r, c, w in _projected_chunks(matrix, height, width):
        behind = ~(w > 0)  # points behind the camera: any finite coordinate, masked later
        r[behind] = 0.0
        c[behind] = 0.0
        out[rows] = ndimage.map_coordinates(
            source, (r, c), order=order, mode="nearest", prefilter=False, output=dtype
        )
    return out


def resample(
    image: np.ndarray,
    matrix: np.ndarray,
    source_shape,
    target_shape,
    *,
    order: int = 1,
    fill: float = 0.0,
    name: str = "image",
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Resample ``image`` (source grid) onto the target grid, plane by plane.

    ``image`` is ``(..., H, W)`` or colour ``(..., H, W, C)`` with ``(H, W) == source_shape``.
    The result is float64 for a float64 image, else float32, with ``fill`` outside the source
    frame (``mask``: the target pixels inside it, if already known). The input is never
    modified.
    """
    array = np.asarray(image)
    src = tuple(int(s) for s in source_shape)
    if array.ndim >= 2 and array.shape[-2:] == src:
        colour = False
    elif array.ndim >= 3 and array.shape[-3:-1] == src and array.shape[-1] in (3, 4):
        colour = True
    else:
        raise ValueError(
            f"{name} has shape {array.shape}, but this registration is for images of "
            f"{src[0]} x {src[1]} px ((..., {src[0]}, {src[1]}) or (..., {src[0]}, {src[1]}, 3))"
        )
    if array.dtype.kind not in "uifb":
        raise ValueError(f"{name} has unsupported dtype {array.dtype}: expected numbers")
    if not 0 <= order <= 5:
        raise ValueError(f"order must be between 0 and 5, got {order}")
    dtype = np.float64 if array.dtype == np.float64 else np.float32
    target = tuple(int(s) for s in target_shape)
    planes = np.moveaxis(array, -1, 0) if colour else array[None]  # (C or 1, ..., H, W)
    lead = planes.shape[:-2]
    flat = planes.reshape((-1, *src))
    out = np.empty((flat.shape[0], *target), dtype=dtype)
    for k, plane in enumerate(flat):
        out[k] = _resample_plane(plane, matrix, target, order, dtype)
    if mask is None:
        mask = valid_mask(matrix, src, target)
    out[:, ~mask] = fill
    out = out.reshape((*lead, *target))
    return np.moveaxis(out, 0, -1) if colour else out[0]


def frame_area_in_target(matrix: np.ndarray, source_shape) -> float:
    """Area, in target pixels, of the source frame mapped onto the target grid.

    The source corners are mapped through ``inv(matrix)`` (shoelace formula); ``inf`` when a
    corner maps to infinity (a projective map whose horizon crosses the source frame).
    """
    h, w = (float(s) for s in source_shape)
    corners = np.array([[-0.5, -0.5], [-0.5, w - 0.5], [h - 0.5, w - 0.5], [h - 0.5, -0.5]])
    inverse = np.linalg.inv(matrix)
    homo = np.c_[corners, np.ones(4)] @ inverse.T
    if np.any(homo[:, 2] <= 0):
        return float("inf")
    pts = homo[:, :2] / homo[:, 2:3]
    x, y = pts[:, 0], pts[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def largest_rectangle(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The largest axis-aligned rectangle of ``True`` pixels in a row-convex mask.

    Returns ``(row0, col0, row1, col1)`` (``mask[row0:row1, col0:col1]`` is all ``True``), or
    ``(0, 0, 0, 0)`` for an empty mask. Exact for masks whose ``True`` pixels form one run per
    row and one block of rows, which holds for every registration's valid mask (the set of
    pixels that map inside a frame is convex); other masks are refused.

    Notes
    -----
    With ``L(r)``, ``R(r)`` the first and last ``True`` column of row ``r``, the rectangle over
    rows ``r0..r1`` spans ``max L .. min R``; every pair ``(r0, r1)`` is tried with running
    minima and maxima (``O(H²)`` vectorised operations, milliseconds for H of a few thousand).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return (0, 0, 0, 0)
    if rows[-1] - rows[0] + 1 != rows.size:
        raise ValueError("mask is not convex: its rows with valid pixels are not contiguous")
    band = mask[rows[0] : rows[-1] + 1]
    left = band.argmax(axis=1)
    right = band.shape[1] - 1 - band[:, ::-1].argmax(axis=1)
    if np.any(band.sum(axis=1) != right - left + 1):
        raise ValueError("mask is not convex: a row holds more than one run of valid pixels")
    best = (0, 0, 0, 0)
    best_area = 0
    n = band.shape[0]
    for r0 in range(n):
        width = np.minimum.accumulate(right[r0:]) - np.maximum.accumulate(left[r0:]) + 1
        area = np.arange(1, n - r0 + 1) * np.maximum(width, 0)
        k = int(area.argmax())
        if area[k] > best_area:
            best_area = int(area[k])
            col0 = int(left[r0 : r0 + k + 1].max())
            best = (int(rows[0] + r0), col0, int(rows[0] + r0 + k + 1), col0 + int(width[k]))
    return best
