"""Tiled feature extraction for images larger than one forward pass fits in memory.

Only eq. 4-5 (the network and the channel norm) run per tile: each tile's activity maps ``T``
are cut to the tile's own area and stitched at feature resolution, and eq. 6-11 then run on the
whole image as usual. Tile origins and halos are multiples of the network's total stride (32),
so every level's feature grid of a tile lines up exactly with the untiled grid; the halo keeps
the tile border's zero padding away from the kept area. The error left against the untiled run
falls with the halo width (README, "Speed and scale", gives the measured curve).
"""

from __future__ import annotations

import math

import psutil
import torch

__all__ = [
    "DEFAULT_HALO",
    "STRIDE",
    "auto_tile",
    "estimate_forward_bytes",
    "tile_spans",
    "tiled_activities",
]

#: The total stride of conv5_1: tile origins and halos are multiples of it.
STRIDE = 32
#: Halo in pixels on each side of a tile (chosen from the measured error-vs-halo curve).
DEFAULT_HALO = 128
# Peak bytes of the float32 forward pass per input pixel and image: 350-500 measured on CPU
# (peak RSS of a pass over 512 and 1024 px squares), with a margin.
_BYTES_PER_PIXEL = 600


def tile_spans(length: int, tile: int) -> list[tuple[int, int]]:
    """``[(start, stop)]`` covering ``range(length)`` with starts at multiples of ``tile``."""
    return [(start, min(start + tile, length)) for start in range(0, length, tile)]


def estimate_forward_bytes(n_images: int, height: int, width: int) -> int:
    """Rough peak memory of one float32 forward pass through ``layer4[0]``."""
    return n_images * height * width * _BYTES_PER_PIXEL


def _memory_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.6)
    return int(psutil.virtual_memory().available * 0.4)


def auto_tile(n_images: int, height: int, width: int, device: torch.device) -> int | None:
    """A tile side (multiple of 32) when one pass would not fit the memory budget, else None."""
    budget = _memory_budget(device)
    if estimate_forward_bytes(n_images, height, width) <= budget:
        return None
    side = math.sqrt(budget / (n_images * _BYTES_PER_PIXEL)) - 2 * DEFAULT_HALO
    return max(STRIDE * 4, int(side) // STRIDE * STRIDE)


def tiled_activities(
    compute, details: torch.Tensor, strides, tile: int, halo: int = DEFAULT_HALO
) -> list[torch.Tensor]:
    """Eq. 4-5 tile by tile.

    Parameters
    ----------
    compute : callable
        Maps a ``(B, 1, h, w)`` crop of the detail images to its per-level activity maps
        (``feature_activities`` with the network and options bound).
    details : Tensor
        ``(B, 1, H, W)`` detail images.
    strides : sequence of int
        The total stride of each level's feature map (e.g. ``2, 4, 8, 16, 32``), each
        dividing 32.
    tile, halo : int
        Tile side and halo width in pixels, multiples of 32.

    Returns
    -------
    list of Tensor
        One ``(B, 1, ceil(H / s), ceil(W / s))`` map per level, equal to the untiled maps up to
        the effect of the halo.
    """
    if tile % STRIDE or halo % STRIDE:
        raise ValueError(f"tile ({tile}) and halo ({halo}) must be multiples of {STRIDE}")
    batch, _, height, width = details.shape
    out = [
        details.new_zeros((batch, 1, -(-height // s), -(-width // s)), dtype=torch.float32)
        for s in strides
    ]
    for y0, y1 in tile_spans(height, tile):
        for x0, x1 in tile_spans(width, tile):
            cy0, cy1 = max(0, y0 - halo), min(height, y1 + halo)
            cx0, cx1 = max(0, x0 - halo), min(width, x1 + halo)
            maps = compute(details[:, :, cy0:cy1, cx0:cx1])
            for target, act, s in zip(out, maps, strides, strict=True):
                # Kept area of this tile at stride s, in crop and in image coordinates.
                ty0, ty1, tx0, tx1 = y0 // s, -(-y1 // s), x0 // s, -(-x1 // s)
                oy, ox = cy0 // s, cx0 // s
                target[:, :, ty0:ty1, tx0:tx1] = act[:, :, ty0 - oy : ty1 - oy, tx0 - ox : tx1 - ox]
    return out
