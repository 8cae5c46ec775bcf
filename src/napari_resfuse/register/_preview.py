"""Pictures that show how well a registration aligns a pair (for the CLI's ``--preview``)."""

from __future__ import annotations

import numpy as np

from ._register import grey_plane
from ._registration import Registration

__all__ = ["PREVIEW_STYLES", "preview"]

PREVIEW_STYLES = ("checkerboard", "blend")


def _stretch(plane: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Percentile stretch (1 %, 99 %) to ``[0, 1]``, measured where ``mask`` is True."""
    values = plane[mask] if mask is not None and mask.any() else plane
    lo, hi = np.percentile(values, (1, 99))
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max()) or 1.0
    return np.clip((plane - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)


def preview(
    registration: Registration,
    infrared,
    visible,
    *,
    style: str = "checkerboard",
    squares: int = 8,
) -> np.ndarray:
    """A uint8 picture on the visible grid of the pair as ``registration`` aligns it.

    ``"checkerboard"``: alternate squares (``squares`` along the shorter side) of the visible
    image and the warped infrared image, both grey and contrast-stretched; edges that continue
    across the squares mean a good alignment. ``"blend"``: an RGB picture with the infrared
    image in magenta and the visible image in green (aligned structures turn grey/white).
    Stacks show their first plane; outside the overlap only the visible image shows.
    """
    if style not in PREVIEW_STYLES:
        raise ValueError(f"style must be one of {', '.join(PREVIEW_STYLES)}, got {style!r}")
    ir = grey_plane("infrared image", infrared)
    vis = grey_plane("visible image", visible)
    registration.check_shapes(ir.shape, vis.shape)
    valid = registration.valid
    warped = _stretch(registration.warp(ir), valid)
    vis = _stretch(vis)
    warped[~valid] = 0.0
    if style == "checkerboard":
        side = max(1, min(vis.shape) // max(1, squares))
        rr, cc = np.indices(vis.shape)
        board = ((rr // side + cc // side) % 2 == 1) & valid
        picture = np.where(board, warped, vis)
    else:
        picture = np.stack([warped, vis, warped], axis=-1)
    return np.round(picture * 255).astype(np.uint8)
