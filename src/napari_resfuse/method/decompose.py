"""Two-scale decomposition, eq. 1 and 2 of the paper (METHOD.md, "Two-scale decomposition").

``I_k^b = I_k * Z`` with ``Z`` a ``kernel_size`` × ``kernel_size`` mean filter, and
``I_k^d = I_k - I_k^b``. Borders reflect the image without repeating the edge pixel
(``torch.nn.functional.pad(mode="reflect")``); where the image is not larger than the pad, they
replicate the edge pixel instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["box_filter", "decompose"]


def box_filter(images: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Mean of each ``kernel_size`` × ``kernel_size`` neighbourhood (eq. 1's ``I * Z``).

    Parameters
    ----------
    images : Tensor
        ``(B, 1, H, W)`` images.
    kernel_size : int
        Odd side of the filter.

    Returns
    -------
    Tensor
        ``(B, 1, H, W)``, the filtered images.
    """
    # Torch, not scipy.ndimage.uniform_filter: the images stay on the device (GPU) of the run.
    pad = kernel_size // 2
    height, width = images.shape[-2:]
    mode = "reflect" if pad < min(height, width) else "replicate"
    padded = F.pad(images, (pad, pad, pad, pad), mode=mode)  # (B, 1, H + 2p, W + 2p)
    # The mean filter is separable: a vertical then a horizontal running mean.
    rows = F.avg_pool2d(padded, kernel_size=(kernel_size, 1), stride=1)  # (B, 1, H, W + 2p)
    return F.avg_pool2d(rows, kernel_size=(1, kernel_size), stride=1)  # (B, 1, H, W)


def decompose(images: torch.Tensor, kernel_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Base and detail layers (eq. 1, 2): ``base = I * Z``, ``detail = I - base``."""
    base = box_filter(images, kernel_size)
    return base, images - base
