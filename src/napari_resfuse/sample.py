"""The bundled synthetic infrared/visible pair, and the code that made it.

The scene is a street at dusk: the visible image holds texture (a brick wall, a fence, foliage,
paving) and no trace of the warm targets; the infrared image holds the warm targets (two people,
a car's engine and wheels, a lamp) on a smooth, low-contrast thermal background. Fusing the two
should keep both. The PNG files in ``napari_resfuse/data`` are exactly what
:func:`make_sample_pair` returns (``python -m napari_resfuse.sample`` rewrites them).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from scipy import ndimage

__all__ = [
    "SAMPLE_FILES",
    "UNALIGNED_SHAPE",
    "load_sample",
    "load_unaligned_sample",
    "make_sample_pair",
    "unaligned_matrix",
]

SAMPLE_FILES = ("sample_infrared.png", "sample_visible.png")
_SHAPE = (240, 320)


def _ellipse(yy, xx, cy, cx, ry, rx):
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def make_sample_pair(seed: int = 2022) -> tuple[np.ndarray, np.ndarray]:
    """Generate the synthetic pair: ``(infrared, visible)``, both ``uint8`` of 240 × 320.

    Infrared: a smooth vertical temperature gradient, slightly blurred noise, and warm targets
    (people, a car's engine and wheels, a street lamp) that the visible image does not show.
    Visible: a brick wall, a picket fence, foliage, paving and a sky gradient, with no targets.
    """
    rng = np.random.default_rng(seed)
    h, w = _SHAPE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)

    # --- visible: texture only -------------------------------------------------------------
    sky = 0.75 - 0.35 * yy / h
    vis = sky.copy()
    wall = (yy > 60) & (yy < 150) & (xx > 170) & (xx < 310)
    course = (yy // 10).astype(int)
    brick_x = (xx + 12 * (course % 2)) % 24
    mortar = (yy % 10 < 1.5) | (brick_x < 1.5)
    vis[wall] = np.where(mortar[wall], 0.85, 0.45 + 0.05 * rng.standard_normal(wall.sum()))
    fence = (yy > 130) & (yy < 185) & (xx < 170) & ((xx % 14) < 5)
    vis[fence] = 0.9 - 0.15 * (yy[fence] - 130) / 55
    foliage = ndimage.gaussian_filter(rng.standard_normal((h, w)), 2.0)
    tree = _ellipse(yy, xx, 55, 80, 40, 55)
    vis[tree] = 0.3 + 2.0 * foliage[tree]
    ground = yy >= 185
    paving = ((yy // 9 + xx // 18) % 2) * 0.08
    vis[ground] = 0.35 + paving[ground] + 0.03 * rng.standard_normal(ground.sum())
    vis += 0.01 * rng.standard_normal((h, w))

    # --- infrared: warm targets on a smooth background ------------------------------------
    ir = 0.25 + 0.15 * yy / h + 0.02 * ndimage.gaussian_filter(rng.standard_normal((h, w)), 6)
    ir[wall] += 0.05  # the wall keeps some heat, with none of the bricks' texture
    for cx in (110.0, 140.0):  # two people behind the fence: head, body, legs
        ir[_ellipse(yy, xx, 128, cx, 7, 6)] = 0.9
        ir[_ellipse(yy, xx, 152, cx, 17, 9)] = 0.85
        ir[_ellipse(yy, xx, 180, cx, 12, 6)] = 0.8
    car = (yy > 190) & (yy < 215) & (xx > 200) & (xx < 290)
    ir[car] = 0.5
    ir[_ellipse(yy, xx, 200, 215, 8, 14)] = 0.95  # engine
    for cx in (215.0, 275.0):
        ir[_ellipse(yy, xx, 217, cx, 7, 7)] = 0.7  # warm tyres
    ir[_ellipse(yy, xx, 40, 250, 6, 6)] = 1.0  # lamp
    ir = ndimage.gaussian_filter(ir, 1.0)

    def to_uint8(img):
        return np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)

    return to_uint8(ir), to_uint8(vis)


def load_sample() -> tuple[np.ndarray, np.ndarray]:
    """The bundled pair ``(infrared, visible)`` as ``uint8`` arrays (no network needed)."""
    import imageio.v3 as iio

    folder = resources.files("napari_resfuse") / "data"
    return tuple(np.asarray(iio.imread(folder / name)) for name in SAMPLE_FILES)


#: The infrared image of the unaligned sample: a camera with fewer, larger pixels.
UNALIGNED_SHAPE = (128, 160)
# How the unaligned sample's infrared camera sees the scene: 1.6 visible px per infrared px,
# rotated by 5 degrees about the frame's centre, and shifted (visible px).
_UNALIGNED_SCALE = 1.6
_UNALIGNED_DEGREES = 5.0
_UNALIGNED_SHIFT = (-6.0, 9.0)


def unaligned_matrix() -> np.ndarray:
    """The known registration of the unaligned sample (visible pixel → infrared pixel).

    The infrared frame's centre sits at the visible frame's centre plus ``(-6, 9)`` px; one
    infrared pixel spans 1.6 visible pixels; the infrared image is rotated by 5° (counter-
    clockwise as displayed) relative to the visible one.
    """
    t = np.deg2rad(_UNALIGNED_DEGREES)
    # infrared → visible: rotate and scale about the infrared centre, then place it.
    rot = _UNALIGNED_SCALE * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    ir_centre = (np.array(UNALIGNED_SHAPE, dtype=np.float64) - 1) / 2
    vis_centre = (np.array(_SHAPE, dtype=np.float64) - 1) / 2 + _UNALIGNED_SHIFT
    forward = np.eye(3)
    forward[:2, :2] = rot
    forward[:2, 2] = vis_centre - rot @ ir_centre
    return np.linalg.inv(forward)


def load_unaligned_sample():
    """The bundled pair as a rig without registration would give it: ``(infrared, visible,
    registration)``.

    The visible image is the bundled one (240 × 320); the infrared image (128 × 160
    ``uint8``) is the bundled infrared scene seen by a coarser camera, rotated by 5° and
    shifted (see :func:`unaligned_matrix`), made by resampling the bundled infrared image
    (Gaussian anti-aliasing, cubic interpolation). ``registration`` is the known truth, a
    :class:`~napari_resfuse.register.Registration` (``model="similarity"``).
    """
    from .register import Registration

    infrared, visible = load_sample()
    truth = Registration(
        unaligned_matrix(),
        model="similarity",
        infrared_shape=UNALIGNED_SHAPE,
        visible_shape=visible.shape,
        method="matrix",
        info={"source": "the known transform of the unaligned sample"},
    )
    sigma = 0.5 * np.sqrt(_UNALIGNED_SCALE**2 - 1.0)  # anti-aliasing for the coarser pixels
    smooth = ndimage.gaussian_filter(infrared.astype(np.float64), sigma, mode="nearest")
    back = np.linalg.inv(truth.matrix)  # infrared pixel → visible pixel
    coarse = ndimage.affine_transform(
        smooth,
        back[:2, :2],
        offset=back[:2, 2],
        output_shape=UNALIGNED_SHAPE,
        order=3,
        mode="nearest",
    )
    infrared_unaligned = np.round(np.clip(coarse, 0, 255)).astype(np.uint8)
    return infrared_unaligned, visible, truth


def _write_sample_files(folder: Path) -> None:
    import imageio.v3 as iio

    for name, image in zip(SAMPLE_FILES, make_sample_pair(), strict=True):
        iio.imwrite(folder / name, image)


if __name__ == "__main__":  # pragma: no cover
    target = Path(__file__).parent / "data"
    _write_sample_files(target)
    print(f"wrote {', '.join(SAMPLE_FILES)} to {target}")
