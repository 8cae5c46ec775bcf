"""Every parameter of a fusion run and its default, in one place.

The API (:func:`napari_resfuse.fuse`), the napari widgets and the command-line tool all read
:class:`FusionOptions`, so their defaults cannot drift apart. The defaults are those of
``METHOD.md`` (the paper's choices); every deviation from the paper is an option that is off by
default.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .method.levels import BACKBONES, VARIANTS, default_layers

__all__ = [
    "BACKBONES",
    "COLORS",
    "LEVELS",
    "NORMS",
    "PRECISIONS",
    "VARIANTS",
    "FusionOptions",
]

#: The five feature levels of METHOD.md (eq. 4), shallow to deep.
LEVELS: tuple[str, ...] = default_layers("resnet152")
NORMS: tuple[str, ...] = ("l1", "l2")
COLORS: tuple[str, ...] = ("ycbcr", "gray")
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16", "float16")


def _check_range(name: str, value: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        raise ValueError(f"{name} must satisfy low < high (both finite), got ({lo}, {hi})")
    return lo, hi


@dataclass(frozen=True)
class FusionOptions:
    """Parameters of one fusion run (METHOD.md), validated on construction.

    Parameters
    ----------
    weights : str or path-like
        ``"imagenet"`` (torchvision's ``ResNet152_Weights.IMAGENET1K_V1``, the paper's era), the
        name of another weight enum member (``"IMAGENET1K_V2"``), ``"random"`` (seeded random
        initialisation, for tests only: results are marked as not pretrained), or the path of a
        torchvision-format ``state_dict`` file.
    seed : int
        Seed of the ``"random"`` weights.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    backbone : {"resnet152", "resnet101", "resnet50", "vgg19"}
        Feature network; ``"resnet152"`` is the paper's. The ResNets tap the same five block
        outputs; VGG-19 taps relu1_1 ... relu5_1 (Li, Wu & Kittler 2018).
    variant : {"paper", "published-code"}
        ``"paper"`` follows the paper's equations (METHOD.md). ``"published-code"`` reproduces
        the choices of the authors' MATLAB code (Tikhonov low-pass, average base, six levels,
        squared activity, block-replication upsampling, max over per-level fused details) on
        torchvision's ResNet-152.
    kernel_size : int
        Side of the box (mean) filter ``Z`` of eq. 1 (odd, >= 3).
    base_weights : (float, float) or None
        ``(λ_1, λ_2)`` of eq. 3, infrared first; ``None``: ``(0.6, 0.4)`` (the paper), or
        ``(0.5, 0.5)`` for ``variant="published-code"``. A warning is issued when they do not
        sum to 1.
    layers : sequence of str or None
        Feature levels taken into the max of eq. 9; ``None``: all levels of the backbone and
        variant (for the paper's ResNet-152, :data:`LEVELS`).
    norm : {"l1", "l2"}
        Channel norm of eq. 5 (``"l2"`` is the extension the paper proposes).
    value_range : (low, high) or ((low, high), (low, high)) or None
        Maps input values to ``[0, 1]`` as ``(x - low) / (high - low)``. ``None``: ``uint8`` is
        divided by 255, every other dtype is scaled by its own min and max. One pair applies to
        both inputs; two pairs are (infrared, visible).
    color : {"ycbcr", "gray"} or None
        For an RGB visible image: ``"ycbcr"`` (default) returns RGB with the fused luminance and
        the visible image's chroma; ``"gray"`` returns the grey fused image only.
    batch_size : int or None
        Planes of a stack fused per network forward pass (each plane is two images); ``None``:
        1 on the CPU (larger batches run slower per plane there: 0.57 frames/s with 1,
        0.39 with 4 at 640 × 480 on 2 cores) and 8 on a GPU.
    precision : {"float32", "bfloat16", "float16"}
        ``float32`` (default) or autocast of the network forward to a lower precision.
    tile : int or None
        Tile side in pixels for tiled feature extraction of large images (a multiple of 32), or
        ``None`` for one pass over the whole image.
    """

    weights: str | os.PathLike = "imagenet"
    seed: int = 0
    device: str = "auto"
    backbone: str = "resnet152"
    variant: str = "paper"
    kernel_size: int = 31
    base_weights: tuple[float, float] | None = None
    layers: tuple[str, ...] | None = None
    norm: str = "l1"
    value_range: Any = None
    color: str | None = None
    batch_size: int | None = None
    precision: str = "float32"
    tile: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen dataclass: normalise fields in place
        if isinstance(self.weights, os.PathLike):
            set_(self, "weights", os.fspath(self.weights))
        if not isinstance(self.weights, str) or not self.weights:
            raise ValueError(
                f"weights must be 'imagenet', 'random' or a path, got {self.weights!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(
                f"device must be a string such as 'auto' or 'cpu', got {self.device!r}"
            )
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        k = self.kernel_size
        if isinstance(k, bool) or not isinstance(k, int) or k < 3 or k % 2 == 0:
            raise ValueError(f"kernel_size must be an odd integer >= 3, got {k!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.base_weights is None:
            paper = self.variant == "paper"
            set_(self, "base_weights", (0.6, 0.4) if paper else (0.5, 0.5))
        bw = _check_pair("base_weights", self.base_weights)
        set_(self, "base_weights", bw)
        if abs(bw[0] + bw[1] - 1.0) > 1e-9:
            warnings.warn(
                f"base_weights {bw} do not sum to 1: the fused base is scaled by {sum(bw):g}",
                UserWarning,
                stacklevel=3,
            )
        available = default_layers(self.backbone, self.variant)
        if self.layers is None:
            set_(self, "layers", available)
        layers = (self.layers,) if isinstance(self.layers, str) else tuple(self.layers)
        unknown = [name for name in layers if name not in available]
        if not layers or unknown:
            raise ValueError(
                f"layers must be a non-empty subset of {available} for {self.backbone} "
                f"({self.variant}), got {self.layers!r}"
            )
        set_(self, "layers", tuple(name for name in available if name in layers))
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.value_range is not None:
            set_(self, "value_range", _normalise_value_range(self.value_range))
        if self.color is not None and self.color not in COLORS:
            raise ValueError(f"color must be one of {COLORS} or None, got {self.color!r}")
        b = self.batch_size
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
            raise ValueError(f"batch_size must be None or a positive integer, got {b!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        t = self.tile
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 32 or t % 32):
            raise ValueError(f"tile must be None or a positive multiple of 32, got {t!r}")

    def replace(self, **changes: Any) -> FusionOptions:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The options as plain JSON-friendly values."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["base_weights"] = list(self.base_weights)
        out["layers"] = list(self.layers)
        if self.value_range is not None:
            out["value_range"] = [list(r) for r in self.value_range]
        return out


def _check_pair(name: str, value: Any) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of numbers, got {value!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return a, b


def _normalise_value_range(value: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(lo, hi)`` or ``((lo, hi), (lo, hi))`` to a pair of ranges (infrared, visible)."""
    if (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, Sequence) for v in value)
    ):
        return (
            _check_range("value_range[0] (infrared)", value[0]),
            _check_range("value_range[1] (visible)", value[1]),
        )
    r = _check_range("value_range", value)
    return (r, r)
