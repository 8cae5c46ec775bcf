"""``variant="published-code"``: the choices of the authors' MATLAB code (METHOD.md, last section).

The paper points to github diylife/imagefusion_deeplearning (``myfusion.m``,
``my_fusion_strategy.m``, ``lowpass.m``, ``extract_l1_feature.m``). That code differs from the
paper's equations; this module reproduces its choices on torchvision's ResNet-152:

- decomposition: SPORCO's Tikhonov low-pass (λ = 5, 16 px symmetric padding, solved in the
  Fourier domain) instead of the 31 × 31 mean filter;
- base fusion: the plain average (``base_weights=(0.5, 0.5)`` by default);
- six levels: the input itself, ``conv1`` before BN, ``res2a_branch1`` before BN and the
  outputs of the last block of stages 3-5 (see :mod:`.levels`);
- activity: the squared l1-norm map smoothed by ``A / 16`` with zero borders (``conv2 'same'``);
- upsampling by block replication with the code's factors 1, 2, 4, 8, 16 and 31 (sic: 31, not
  32, for res5c; where the replicated map does not reach the image border the code divides 0 by
  0, and MATLAB's ``max`` then ignores that level there);
- selection: per pixel, the maximum over levels of each level's fused detail,
  ``max_i (W_1^i D_1 + W_2^i D_2)`` (the image the code writes as its result).

It cannot equal the MATLAB numbers exactly: torchvision's ResNet-152 puts the stride 2 of each
downsampling block in the 3 × 3 convolution, the original Caffe model (MatConvNet's
``imagenet-resnet-152-dag``) in the 1 × 1 one, and its weights were trained separately, so
the feature maps differ. Everything after the features follows the code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .weights import SMOOTHING_KERNEL

__all__ = [
    "LOWPASS_LAMBDA",
    "LOWPASS_PAD",
    "block_replicate",
    "fuse_details",
    "squared_activity",
    "symmetric_pad",
    "tikhonov_lowpass",
]

LOWPASS_LAMBDA = 5.0
LOWPASS_PAD = 16


def symmetric_pad(images: torch.Tensor, pad: int) -> torch.Tensor:
    """MATLAB ``padarray(x, [p p], 'symmetric')``: mirror including the edge pixel."""
    height, width = images.shape[-2:]

    def index(n: int) -> torch.Tensor:
        i = torch.arange(-pad, n + pad, device=images.device)
        i = torch.where(i < 0, -i - 1, i)  # -1 -> 0, -2 -> 1, ...
        return torch.where(i >= n, 2 * n - 1 - i, i)  # n -> n - 1, n + 1 -> n - 2, ...

    return images[..., index(height), :][..., index(width)]


def tikhonov_lowpass(
    images: torch.Tensor, lam: float = LOWPASS_LAMBDA, pad: int = LOWPASS_PAD
) -> tuple[torch.Tensor, torch.Tensor]:
    """SPORCO ``lowpass``: ``argmin_b ||b - s||² + λ(||∇_x b||² + ||∇_y b||²)`` on the padded
    image, solved by FFT (circular differences ``[-1 1]``); returns (low, high = s - low).

    ``images`` is ``(B, 1, H, W)``; the solve runs in float64.
    """
    padded = symmetric_pad(images.double(), pad)
    hp, wp = padded.shape[-2:]
    k = torch.arange(hp, device=images.device, dtype=torch.float64)
    l = torch.arange(wp, device=images.device, dtype=torch.float64)
    # |fft2([-1 1], hp, wp)|² = 2 - 2 cos(2π l / wp), and likewise along the columns.
    g_rows = 2.0 - 2.0 * torch.cos(2.0 * math.pi * l / wp)
    g_cols = 2.0 - 2.0 * torch.cos(2.0 * math.pi * k / hp)
    denominator = 1.0 + lam * g_rows[None, :] + lam * g_cols[:, None]
    low = torch.fft.ifft2(torch.fft.fft2(padded) / denominator).real
    low = low[..., pad : pad + images.shape[-2], pad : pad + images.shape[-1]]
    low = low.to(images.dtype)
    return low, images - low


def squared_activity(features: torch.Tensor) -> torch.Tensor:
    """``conv2(l1.^2, [1 2 1; 2 4 2; 1 2 1] / 16, 'same')``; ``(B, C, h, w) -> (B, 1, h, w)``."""
    l1 = features.float().abs().sum(dim=1, keepdim=True)
    kernel = torch.tensor(SMOOTHING_KERNEL, dtype=l1.dtype, device=l1.device) / 16.0
    kernel = kernel.view(1, 1, 3, 3)
    return F.conv2d(l1.square(), kernel, padding=1)


def block_replicate(maps: torch.Tensor, unit: int, size: tuple[int, int]) -> torch.Tensor:
    """Each value fills a ``unit`` × ``unit`` block; cropped to ``size``, zero where the
    blocks do not reach (the code's ``zeros(m1, n1)`` that it fills block by block)."""
    big = maps.repeat_interleave(unit, dim=-2).repeat_interleave(unit, dim=-1)
    height, width = size
    big = big[..., :height, :width]
    return F.pad(big, (0, width - big.shape[-1], 0, height - big.shape[-2]))


def fuse_details(
    energies: list[torch.Tensor], units: list[int], details: torch.Tensor, batch: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``my_fusion_strategy`` per level, then the max over levels of the fused details.

    Parameters
    ----------
    energies : list of Tensor
        Per level ``(2B, 1, h_i, w_i)`` smoothed squared activities (infrared first).
    units : list of int
        Block-replication factor per level.
    details : Tensor
        ``(2B, 1, M, N)`` detail images.

    Returns
    -------
    level_weights : ``(2B, L, M, N)``, NaN where the code divides 0 by 0, reported as 0.5.
    fused_detail : ``(B, M, N)``; where every level is NaN the code writes NaN, here 0.
    weights : ``(2B, M, N)``, the max over levels of the weights (the code's ``F_weight``).
    winning : ``(2B, M, N)``, the level whose fused detail was the maximum.
    """
    size = tuple(details.shape[-2:])
    d_ir, d_vis = details[:batch, 0], details[batch:, 0]
    weights, fused = [], []
    for energy, unit in zip(energies, units, strict=True):
        up = block_replicate(energy, unit, size)[:, 0]  # (2B, M, N)
        total = up[:batch] + up[batch:]
        w_ir, w_vis = up[:batch] / total, up[batch:] / total  # 0 / 0 = NaN, as in MATLAB
        fused.append(d_ir * w_ir + d_vis * w_vis)
        weights.append(torch.cat([w_ir, w_vis]))
    per_level = torch.stack(fused, dim=1)  # (B, L, M, N)
    # MATLAB's max ignores NaN (torch.fmax); NaN only where every level is NaN.
    fused_detail = per_level[:, 0]
    for level in range(1, per_level.shape[1]):
        fused_detail = torch.fmax(fused_detail, per_level[:, level])
    winning = torch.nan_to_num(per_level, nan=-math.inf).argmax(dim=1)  # (B, M, N)
    level_w = torch.stack(weights, dim=1)  # (2B, L, M, N)
    max_w = level_w[:, 0]
    for level in range(1, level_w.shape[1]):
        max_w = torch.fmax(max_w, level_w[:, level])
    return (
        torch.nan_to_num(level_w, nan=0.5),
        torch.nan_to_num(fused_detail, nan=0.0),
        torch.nan_to_num(max_w, nan=0.5),
        torch.cat([winning, winning]),
    )
