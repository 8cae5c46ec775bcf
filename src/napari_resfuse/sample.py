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

__all__ = ["SAMPLE_FILES", "load_sample", "make_sample_pair"]

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


def _write_sample_files(folder: Path) -> None:
    import imageio.v3 as iio

    for name, image in zip(SAMPLE_FILES, make_sample_pair(), strict=True):
        iio.imwrite(folder / name, image)


if __name__ == "__main__":  # pragma: no cover
    target = Path(__file__).parent / "data"
    _write_sample_files(target)
    print(f"wrote {', '.join(SAMPLE_FILES)} to {target}")
