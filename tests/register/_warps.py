"""Known warps of an aligned infrared/visible pair, to test and benchmark registration.

An aligned *base* pair (same grid, e.g. the bundled sample) is viewed by two simulated cameras.
A camera is a 3 × 3 homogeneous matrix mapping one of its pixels ``(row, col, 1)`` to the base
coordinate it sees (napari's ``(row, col)`` order, pixel centres at integer coordinates); its
image is the base resampled there, blurred first when the camera's pixels are larger than the
base's (as a lens and sensor would). The true registration (visible pixel → infrared pixel) is
then ``inv(infrared_camera) @ visible_camera``.

Errors are measured in **visible pixels** (the resolution the fused image is made at): for a
visible pixel ``p``, the estimate ``E`` says the infrared sees ``E(p)`` there; that infrared
point truly lies at ``T⁻¹(E(p))`` in the visible frame, and the error is its distance to ``p``.

- :func:`overlap_rms`: the RMS of that error over the visible pixels whose true infrared point
  lies inside the infrared frame (the overlap), on a grid of at most ~40 000 pixels;
- :func:`corner_rms`: the RMS of that error at the visible frame's four corner pixels.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def camera(shape, *, pixel: float, rotation: float = 0.0, centre=(0.0, 0.0), tilt=(0.0, 0.0)):
    """A camera of ``shape`` whose centre pixel sees base point ``centre``.

    ``pixel`` is the size of its pixels in base pixels, ``rotation`` its roll in degrees and
    ``tilt`` two small perspective terms (per base pixel) that make the map projective.
    """
    h, w = shape
    a = math.radians(rotation)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    lin = pixel * rot
    mid = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    mat = np.eye(3)
    mat[:2, :2] = lin
    mat[:2, 2] = np.asarray(centre, dtype=float) - lin @ mid
    if any(tilt):
        # A perspective that leaves the centre pixel where it is.
        persp = np.eye(3)
        persp[2, :2] = tilt
        c = np.asarray(centre, dtype=float)
        shift, back = np.eye(3), np.eye(3)
        shift[:2, 2] = -c
        back[:2, 2] = c
        mat = back @ persp @ shift @ mat
    return mat


def render(base: np.ndarray, cam: np.ndarray, shape) -> np.ndarray:
    """What ``cam`` sees of ``base``: float64 of ``shape`` (cubic, edges extended)."""
    base = np.asarray(base, dtype=np.float64)
    pixel = math.sqrt(abs(np.linalg.det(cam[:2, :2])))
    if pixel > 1.0:  # anti-alias: the camera's larger pixels integrate the base
        base = ndimage.gaussian_filter(base, 0.5 * math.sqrt(pixel**2 - 1.0))
    h, w = shape
    rr, cc = np.mgrid[0:h, 0:w].astype(np.float64)
    pts = cam @ np.stack([rr.ravel(), cc.ravel(), np.ones(rr.size)])
    coords = pts[:2] / pts[2]
    out = ndimage.map_coordinates(base, coords, order=3, mode="nearest")
    return out.reshape(h, w)


def true_matrix(infrared_cam: np.ndarray, visible_cam: np.ndarray) -> np.ndarray:
    """The registration (visible pixel → infrared pixel) of the two cameras."""
    mat = np.linalg.inv(infrared_cam) @ visible_cam
    return mat / mat[2, 2]


def _apply(mat, pts):
    homo = np.c_[pts, np.ones(len(pts))] @ mat.T
    return homo[:, :2] / homo[:, 2:3]


def _errors(true, est, pts):
    back = _apply(np.linalg.inv(true), _apply(est, pts))
    return np.hypot(*(back - pts).T)


def overlap_rms(true, est, infrared_shape, visible_shape) -> float:
    """RMS error (visible px) over the visible pixels that truly see the infrared frame."""
    h, w = visible_shape
    step = max(1, math.ceil(math.sqrt(h * w / 40000.0)))
    rr, cc = np.mgrid[0:h:step, 0:w:step]
    pts = np.c_[rr.ravel(), cc.ravel()].astype(np.float64)
    ir = _apply(true, pts)
    hi, wi = infrared_shape
    inside = (ir[:, 0] >= -0.5) & (ir[:, 0] < hi - 0.5) & (ir[:, 1] >= -0.5) & (ir[:, 1] < wi - 0.5)
    if not inside.any():
        raise ValueError("the true registration has no overlap")
    return float(np.sqrt(np.mean(_errors(true, est, pts[inside]) ** 2)))


def corner_rms(true, est, visible_shape) -> float:
    """RMS error (visible px) at the visible frame's four corner pixels."""
    h, w = visible_shape
    pts = np.array([[0, 0], [0, w - 1], [h - 1, 0], [h - 1, w - 1]], dtype=np.float64)
    return float(np.sqrt(np.mean(_errors(true, est, pts) ** 2)))


def warp_pair(
    infrared: np.ndarray,
    visible: np.ndarray,
    *,
    ratio: float = 1.0,
    rotation: float = 0.0,
    offset=(0.0, 0.0),
    infrared_side: float = 1.0,
    visible_side: float = 1.0,
    visible_pixel: float = 1.0,
    tilt=(0.0, 0.0),
    invert: bool = False,
    base_registration=None,
):
    """A known warp of the aligned base pair ``(infrared, visible)``.

    The visible camera sees the base centred, ``visible_side`` of its extent with pixels of
    ``visible_pixel`` base px. The infrared camera's pixels are ``ratio`` times the visible's
    (``ratio > 1``: a coarser infrared, as with a thermal core beside a photo camera; ``< 1``:
    the other way), rolled by ``rotation`` degrees, its centre moved by ``offset`` (a fraction of
    the base's height and width) and its extent ``infrared_side`` of the base's. ``invert``
    flips the infrared contrast. ``base_registration`` (3 × 3, base visible coordinate → base
    infrared coordinate) is the base pair's own misalignment, if known: it is composed into the
    truth (a curated pair such as TNO's is off by a few pixels). Returns
    ``(infrared, visible, true_matrix)``.
    """
    bh, bw = visible.shape
    mid = np.array([(bh - 1) / 2.0, (bw - 1) / 2.0])
    vis_shape = (
        max(16, round(bh * visible_side / visible_pixel)),
        max(16, round(bw * visible_side / visible_pixel)),
    )
    vis_cam = camera(vis_shape, pixel=visible_pixel, centre=mid)
    ir_pixel = visible_pixel * ratio
    ir_shape = (
        max(16, round(bh * infrared_side / ir_pixel)),
        max(16, round(bw * infrared_side / ir_pixel)),
    )
    centre = mid + np.array([offset[0] * bh, offset[1] * bw])
    ir_cam = camera(ir_shape, pixel=ir_pixel, rotation=rotation, centre=centre, tilt=tilt)
    ir = render(infrared, ir_cam, ir_shape)
    if invert:
        ir = ir.max() + ir.min() - ir
    vis = render(visible, vis_cam, vis_shape)
    if base_registration is not None:
        vis_cam = np.asarray(base_registration, dtype=float) @ vis_cam
    return ir, vis, true_matrix(ir_cam, vis_cam)


def scene(shape=(240, 320), *, seed: int = 0):
    """An aligned multimodal pair ``(infrared, visible)`` of float64 in [0, 1], made up.

    A street-like scene of random rectangles, ellipses and bars (buildings, windows, vehicles,
    poles, people). Each object has one brightness in the visible image and another, unrelated
    one in the infrared image; the visible adds fine texture and a sky gradient, the infrared a
    smooth thermal gradient, blur and sensor noise. The two share edges and nothing else, as real
    pairs do.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    vis = 0.7 - 0.3 * yy / h
    ir = 0.3 + 0.2 * yy / h
    horizon = h * rng.uniform(0.45, 0.6)
    ground = yy > horizon
    vis[ground] = rng.uniform(0.2, 0.5)
    ir[ground] = rng.uniform(0.3, 0.6)
    for _ in range(int(rng.integers(18, 28))):
        kind = rng.choice(["box", "ellipse", "bar"])
        cy, cx = rng.uniform(0.05, 0.95) * h, rng.uniform(0.05, 0.95) * w
        if kind == "box":
            ry, rx = rng.uniform(0.04, 0.2) * h, rng.uniform(0.04, 0.2) * w
            region = (abs(yy - cy) < ry) & (abs(xx - cx) < rx)
        elif kind == "ellipse":
            ry, rx = rng.uniform(0.02, 0.1) * h, rng.uniform(0.02, 0.1) * w
            region = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        else:
            ry, rx = rng.uniform(0.1, 0.3) * h, rng.uniform(0.005, 0.02) * w + 1
            region = (abs(yy - cy) < ry) & (abs(xx - cx) < rx)
        vis[region] = rng.uniform(0.0, 1.0)
        ir[region] = rng.uniform(0.0, 1.0)
    texture = ndimage.gaussian_filter(rng.standard_normal((h, w)), 1.0)
    vis = vis + 0.04 * texture
    ir = ndimage.gaussian_filter(ir, 1.2) + 0.01 * rng.standard_normal((h, w))
    return np.clip(ir, 0.0, 1.0), np.clip(vis, 0.0, 1.0)
