"""Input checking and conversion to float ``[0, 1]`` (METHOD.md, "Inputs").

Everything here works on numpy arrays and never modifies its arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "MIN_SIDE",
    "RGB_LUMA",
    "PreparedPair",
    "as_array",
    "is_color",
    "prepare_pair",
    "rgb_to_ycbcr",
    "spatial_shape",
    "to_unit_range",
    "ycbcr_to_rgb",
]

#: The smallest accepted image side: conv5_1 has a stride of 32.
MIN_SIDE = 32

# BT.601 full-range luma/chroma (JPEG's YCbCr), values in [0, 1] with chroma centred on 0.5.
_RGB_TO_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)
#: BT.601 luma weights of (R, G, B): the first row of the matrix above.
RGB_LUMA = _RGB_TO_YCBCR[0]
_YCBCR_TO_RGB = np.array(
    [
        [1.0, 0.0, 1.402],
        [1.0, -0.344136, -0.714136],
        [1.0, 1.772, 0.0],
    ]
)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """BT.601 full-range YCbCr of an RGB image in ``[0, 1]`` (channels last)."""
    ycc = rgb @ _RGB_TO_YCBCR.T.astype(rgb.dtype)
    ycc[..., 1:] += 0.5
    return ycc


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr` (not clipped)."""
    centred = ycc.copy()
    centred[..., 1:] -= 0.5
    return centred @ _YCBCR_TO_RGB.T.astype(ycc.dtype)


def is_color(shape: Sequence[int]) -> bool:
    """Whether an array of this shape is colour: a last axis of 3 or 4 (an image side is at
    least :data:`MIN_SIDE`, so it cannot be a width)."""
    return len(shape) >= 3 and shape[-1] in (3, 4)


def spatial_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """The shape without its colour axis: ``(..., H, W)``."""
    return tuple(shape[:-1]) if is_color(shape) else tuple(shape)


def as_array(image: Any, name: str) -> np.ndarray:
    """``image`` as a numpy array, never a copy when it already is one.

    A torch tensor (one that requires grad, or on a GPU, included) is detached and copied to
    the CPU; the caller's tensor is not changed.
    """
    if isinstance(image, np.ndarray):
        return image
    detach = getattr(image, "detach", None)
    if callable(detach) and type(image).__module__.split(".")[0] == "torch":
        return detach().cpu().numpy()
    try:
        return np.asarray(image)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"{name} image could not be read as an array ({type(image).__name__}): {exc}"
        ) from None


def to_unit_range(
    name: str, array: np.ndarray, value_range: tuple[float, float] | None = None
) -> tuple[np.ndarray, tuple[float, float]]:
    """Scale an image to float32 ``[0, 1]``.

    ``uint8`` is divided by 255; any other dtype is scaled by ``value_range`` when given, else by
    its own min and max. Returns the scaled copy and the range used.

    Raises
    ------
    ValueError
        For an empty, non-numeric, non-finite or constant image; the message names ``name``.
    """
    if array.size == 0:
        raise ValueError(f"{name} image is empty (shape {array.shape})")
    kind = array.dtype.kind
    if kind not in "uif":
        raise ValueError(
            f"{name} image has unsupported dtype {array.dtype}: expected an integer or float type"
        )
    if kind == "f" and not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "inf"
        raise ValueError(f"{name} image contains {bad} values; replace them before fusing")
    lo, hi = array.min(), array.max()
    if lo == hi:
        raise ValueError(
            f"{name} image is constant (every value is {lo}): there is nothing to fuse"
        )
    if value_range is None:
        value_range = (0.0, 255.0) if array.dtype == np.uint8 else (float(lo), float(hi))
    low, high = value_range
    scaled = (array.astype(np.float64) - low) / (high - low)
    return scaled.astype(np.float32), (float(low), float(high))


@dataclass(frozen=True)
class PreparedPair:
    """Both inputs as float32 ``[0, 1]`` planes ``(P, H, W)``, and how to undo the layout."""

    infrared: np.ndarray  # (P, H, W)
    visible: np.ndarray  # (P, H, W), the luminance for an RGB visible image
    chroma: np.ndarray | None  # (P, H, W, 2) Cb/Cr of an RGB visible image, else None
    spatial_shape: tuple[int, ...]  # (..., H, W): the inputs' shape without colour
    value_ranges: tuple[tuple[float, float], tuple[float, float]]


def _luminance_input(name: str, array: np.ndarray, value_range) -> tuple[np.ndarray, ...]:
    """Scale ``array`` to ``[0, 1]``; for RGB give its luminance and chroma."""
    if is_color(array.shape):
        if array.shape[-1] == 4:
            raise ValueError(
                f"{name} image has 4 channels (RGBA, shape {array.shape}): drop the alpha "
                "channel or pass an RGB or greyscale image"
            )
        unit, used = to_unit_range(name, array, value_range)
        ycc = rgb_to_ycbcr(unit)
        return ycc[..., 0], ycc[..., 1:], used
    unit, used = to_unit_range(name, array, value_range)
    return unit, None, used


def prepare_pair(infrared, visible, value_range=None) -> PreparedPair:
    """Check an infrared/visible pair and convert it to planes (METHOD.md, "Inputs").

    Parameters
    ----------
    infrared, visible : array_like
        ``(..., H, W)`` images; the visible one may be RGB ``(..., H, W, 3)`` (fused on its
        luminance). An RGB infrared image is converted to its luminance.
    value_range : pair of (low, high) or None
        Per-input value ranges (infrared, visible), see :func:`to_unit_range`.
    """
    ir = as_array(infrared, "infrared")
    vis = as_array(visible, "visible")
    for name, array in (("infrared", ir), ("visible", vis)):
        if array.dtype == object or array.ndim < 2:
            raise ValueError(
                f"{name} image must be an array of at least 2 dimensions, got shape "
                f"{array.shape} and dtype {array.dtype}"
            )
    ranges = value_range or (None, None)
    ir_y, _, ir_range = _luminance_input("infrared", ir, ranges[0])
    vis_y, chroma, vis_range = _luminance_input("visible", vis, ranges[1])
    if ir_y.shape != vis_y.shape:
        raise ValueError(
            f"infrared and visible images differ in shape: infrared {ir.shape} vs visible "
            f"{vis.shape} (height and width, and any stack axes, must match)"
        )
    height, width = ir_y.shape[-2:]
    if min(height, width) < MIN_SIDE:
        raise ValueError(
            f"images of {height} x {width} px are too small for the network: each side must be "
            f"at least {MIN_SIDE} px (conv5_1 has a stride of 32)"
        )
    spatial = ir_y.shape
    planes = (-1, height, width)
    return PreparedPair(
        infrared=ir_y.reshape(planes),
        visible=vis_y.reshape(planes),
        chroma=None if chroma is None else chroma.reshape((*planes, 2)),
        spatial_shape=tuple(spatial),
        value_ranges=(ir_range, vis_range),
    )
