"""Weight maps from deep features, eq. 5 to 9 of the paper (METHOD.md, "Detail fusion").

All functions take and return tensors on the features' device; shapes are noted per step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "SMOOTHING_KERNEL",
    "activity",
    "level_weights",
    "max_select",
    "smooth",
    "upsample",
]

#: ``A`` of eq. 6; its scale cancels in eq. 7.
SMOOTHING_KERNEL = ((1.0, 2.0, 1.0), (2.0, 4.0, 2.0), (1.0, 2.0, 1.0))


def activity(features: torch.Tensor, norm: str = "l1") -> torch.Tensor:
    """Eq. 5: ``T(x, y) = ||L(x, y)||`` over channels; ``(B, C, h, w) -> (B, 1, h, w)``."""
    if features.dtype in (torch.float16, torch.bfloat16):
        features = features.float()  # autocast features: sum in float32
    if norm == "l1":
        return features.abs().sum(dim=1, keepdim=True)
    if norm == "l2":
        return torch.linalg.vector_norm(features, ord=2, dim=1, keepdim=True)
    raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")


def smooth(activity_map: torch.Tensor) -> torch.Tensor:
    """Eq. 6: ``T̂ = T ⊛ A``, stride 1, zero padding, same size; ``(B, 1, h, w)``."""
    kernel = torch.tensor(SMOOTHING_KERNEL, dtype=activity_map.dtype, device=activity_map.device)
    return F.conv2d(activity_map, kernel.view(1, 1, 3, 3), padding=1)


def level_weights(
    smoothed_ir: torch.Tensor, smoothed_vis: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 7: ``W_k = T̂_k / (T̂_1 + T̂_2)``; 0.5 each where the sum is 0."""
    total = smoothed_ir + smoothed_vis
    flat = total == 0
    safe = torch.where(flat, torch.ones_like(total), total)
    half = torch.full_like(total, 0.5)
    return (
        torch.where(flat, half, smoothed_ir / safe),
        torch.where(flat, half, smoothed_vis / safe),
    )


def upsample(weights: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Eq. 8: bilinear resize to exactly ``size`` = (M, N); ``(B, 1, h, w) -> (B, 1, M, N)``."""
    return F.interpolate(weights, size=size, mode="bilinear", align_corners=False)


def max_select(upsampled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 9: ``Ŵ_k = max_i Ŵ_k^i`` over the level axis 1 of ``(B, L, M, N)``.

    Returns the maximum ``(B, M, N)`` and the index of the level that gave it (the first one
    where several tie).
    """
    values, index = upsampled.max(dim=1)
    return values, index
