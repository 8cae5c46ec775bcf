"""Put an infrared/visible pair on one grid before fusing (``fuse(..., registration=...)``).

:func:`align_pair` resolves the ``registration`` argument (``"auto"``, a
:class:`Registration` or a file), resamples one image onto the other's grid, and crops to the
overlap or fills what one image does not see. It pins the value ranges of both images to those
of the *unwarped* inputs, so that cropping or resampling does not change how their values are
scaled to ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..method.inputs import RGB_LUMA, is_color, spatial_shape
from ._registration import Registration, RegistrationError

__all__ = ["AlignedPair", "align_pair", "alignment_params", "resolve_registration"]

GRIDS = ("visible", "infrared")
CROPS = ("overlap", None)


@dataclass(frozen=True)
class AlignedPair:
    """Both images on one grid, ready for the fusion engine."""

    infrared: np.ndarray
    visible: np.ndarray
    value_range: tuple[tuple[float, float], tuple[float, float]]
    valid: np.ndarray | None  # (H, W) where both images see the scene; None once cropped
    registration: Registration
    params: dict[str, Any]


def _is_colour(array: np.ndarray, shape) -> bool:
    """Whether ``array`` is ``(..., H, W, C)`` colour with ``(H, W) == shape``."""
    return is_color(array.shape) and tuple(array.shape[-3:-1]) == tuple(shape)


def _spatial(name: str, array: np.ndarray) -> tuple[int, int]:
    """``(H, W)`` of an image: the axes before a colour axis of 3 or 4, else the last two."""
    if array.ndim < 2:
        raise ValueError(f"{name} image must have at least 2 dimensions, got shape {array.shape}")
    return tuple(int(s) for s in spatial_shape(array.shape)[-2:])


def _range(name: str, array: np.ndarray, given) -> tuple[float, float]:
    """The value range fusion would use for the unwarped image (see ``to_unit_range``)."""
    if array.dtype.kind not in "uif":
        raise ValueError(
            f"{name} image has unsupported dtype {array.dtype}: expected an integer or float type"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "inf"
        raise ValueError(f"{name} image contains {bad} values; replace them before fusing")
    if given is not None:
        return (float(given[0]), float(given[1]))
    if array.dtype == np.uint8:
        return (0.0, 255.0)
    return (float(array.min()), float(array.max()))


def _unit_grey(array: np.ndarray, value_range, shape) -> np.ndarray:
    """``(..., H, W)`` grey values of ``array`` scaled to ``[0, 1]`` by ``value_range``."""
    low, high = value_range
    data = array.astype(np.float64)
    if _is_colour(array, shape):
        data = data[..., :3] @ RGB_LUMA
    return (data - low) / (high - low)


def resolve_registration(registration, infrared_shape, visible_shape, infrared, visible):
    """A :class:`Registration` bound to these shapes from ``"auto"``, a file or an object."""
    if isinstance(registration, str) and registration == "auto":
        from ._register import register

        return register(infrared, visible)
    if isinstance(registration, (str, Path)):
        registration = Registration.load(registration)
    if not isinstance(registration, Registration):
        raise ValueError(
            "registration must be None, 'auto', a Registration or the path of a registration "
            f"file, got {type(registration).__name__}"
        )
    if registration.infrared_shape is None or registration.visible_shape is None:
        registration = registration.with_shapes(infrared_shape, visible_shape)
    registration.check_shapes(infrared_shape, visible_shape)
    return registration


def check_grid_crop(grid: str, crop: str | None) -> None:
    """Refuse a ``grid`` other than :data:`GRIDS` or a ``crop`` other than :data:`CROPS`."""
    if grid not in GRIDS:
        raise ValueError(f"grid must be 'visible' or 'infrared', got {grid!r}")
    if crop not in CROPS:
        raise ValueError(f"crop must be 'overlap' or None, got {crop!r}")


def align_pair(
    infrared,
    visible,
    registration,
    *,
    grid: str = "visible",
    crop: str | None = "overlap",
    value_range=None,
    order: int = 1,
) -> AlignedPair:
    """Resample the pair onto one grid; see :func:`napari_resfuse.fuse` for the arguments.

    Outside the overlap (``crop=None``) the resampled image takes the other image's grey value,
    rescaled into its own value range: the two inputs are then equal there, so the fused image
    is the image that does see the scene (for the paper's variant, exactly, away from the
    overlap's border) rather than a dark band or a made-up cold region. NaN-free. The inputs
    are never modified.
    """
    check_grid_crop(grid, crop)
    ir = np.asarray(infrared)
    vis = np.asarray(visible)
    ir_shape, vis_shape = _spatial("infrared", ir), _spatial("visible", vis)
    ranges = value_range or (None, None)
    ir_range = _range("infrared", ir, ranges[0])
    vis_range = _range("visible", vis, ranges[1])
    lead_ir = ir.shape[: ir.ndim - 2 - _is_colour(ir, ir_shape)]
    lead_vis = vis.shape[: vis.ndim - 2 - _is_colour(vis, vis_shape)]
    if lead_ir != lead_vis:
        raise ValueError(
            f"infrared {ir.shape} and visible {vis.shape} have different stack axes "
            f"({lead_ir} vs {lead_vis}): one registration applies plane by plane to stacks of "
            "the same length"
        )
    reg = resolve_registration(registration, ir_shape, vis_shape, ir, vis)

    if grid == "visible":
        mask = reg.valid
        moved = reg.warp(ir, order=order)  # float32 (float64 for float64 input)
        kept = vis
        moved_range, kept_range, kept_shape = ir_range, vis_range, vis_shape
    else:
        mask = reg.valid_infrared
        moved = reg.warp_visible(vis, order=order)
        kept = ir
        moved_range, kept_range, kept_shape = vis_range, ir_range, ir_shape
    if not mask.any():
        raise RegistrationError(
            "the registered images do not overlap at all: nothing to fuse (check the "
            "registration, or that the images belong together)"
        )

    box = None
    if crop == "overlap":
        box = reg.overlap_box(grid)
        r0, c0, r1, c1 = box
        colour_moved = _is_colour(moved, kept_shape)
        colour_kept = _is_colour(kept, kept_shape)
        moved = moved[..., r0:r1, c0:c1, :] if colour_moved else moved[..., r0:r1, c0:c1]
        kept = kept[..., r0:r1, c0:c1, :] if colour_kept else kept[..., r0:r1, c0:c1]
        valid = None
    else:
        # The missing image takes the other one's grey value, in its own value range.
        other = _unit_grey(kept, kept_range, kept_shape)
        low, high = moved_range
        fill = (low + other * (high - low)).astype(moved.dtype)
        outside = ~mask
        if _is_colour(moved, kept_shape):
            moved[..., outside, :] = fill[..., outside, None]
        else:
            moved[..., outside] = fill[..., outside]
        valid = mask.copy()

    params = alignment_params(reg, grid, crop, order)
    if grid == "visible":
        pair = (moved, kept)
    else:
        pair = (kept, moved)
    return AlignedPair(
        infrared=pair[0],
        visible=pair[1],
        value_range=(ir_range, vis_range),
        valid=valid,
        registration=reg,
        params=params,
    )


def alignment_params(reg: Registration, grid: str, crop: str | None, order: int = 1) -> dict:
    """How a pair is aligned (``result.params["registration"]``), from the registration alone:
    no pixels are needed (the lazy and batch paths describe a stack before fusing it)."""
    box = reg.overlap_box(grid) if crop == "overlap" else None
    return {
        "method": reg.method,
        "model": reg.model,
        "matrix": reg.matrix.tolist(),
        "infrared_shape": list(reg.infrared_shape),
        "visible_shape": list(reg.visible_shape),
        "score": reg.score,
        "metric": reg.metric,
        "rms": reg.rms,
        "overlap": reg.overlap,
        "grid": grid,
        "crop": crop,
        "crop_offset": [box[0], box[1]] if box is not None else [0, 0],
        "crop_shape": [box[2] - box[0], box[3] - box[1]] if box is not None else None,
        "interpolation_order": order,
        "outside": None
        if box is not None
        else f"{'infrared' if grid == 'visible' else 'visible'} image filled with the {grid} "
        "image's grey values",
    }
