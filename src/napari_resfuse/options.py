"""Every parameter of a fusion run and its default, in one place.

The API (:func:`napari_resfuse.fuse`), the napari widgets and the command-line tool all read
:class:`FusionOptions`, so their defaults cannot drift apart. The defaults are those of
``METHOD.md`` (the paper's choices); every deviation from the paper is an option that is off by
default.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .method.levels import BACKBONES, VARIANTS, default_layers

__all__ = [
    "BACKBONES",
    "COLORS",
    "LEVELS",
    "MAX_KERNEL_SIZE",
    "NORMS",
    "PRECISIONS",
    "SEED_RANGE",
    "VARIANTS",
    "WEIGHT_KEYWORDS",
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


#: Weight names that are keywords in any case (``"Random"`` is ``"random"``, not a file).
WEIGHT_KEYWORDS: tuple[str, ...] = ("imagenet", "random")
#: Largest box filter side accepted (the widget's maximum; a run also bounds it by the image).
MAX_KERNEL_SIZE = 1001
#: Seeds accepted for ``"random"`` weights: torch's (``torch.manual_seed``) non-negative range.
SEED_RANGE = (0, 2**64 - 1)


def _meta(help: str, **cli: Any) -> dict[str, Any]:
    """A field's description: ``help``, ``choices``, and how the command line spells it
    (``type``, ``metavar`` for a pair, ``separator`` for a list); see ``cli/_options.py``."""
    return {"help": help, **cli}


def _integer(name: str, value: Any, expected: str = "an integer") -> int:
    """``value`` as an int: Python and numpy integers are accepted, bools and floats are not."""
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be {expected}, got {value!r}") from None


def _warn_base_weights(bw: tuple[float, float]) -> None:
    # METHOD.md: λ_1 = 0.6, λ_2 = 0.4; other weights are a documented variant, with a warning
    # when they do not sum to 1 or are not a weighted average (a weight outside [0, 1]).
    problems = []
    if abs(bw[0] + bw[1] - 1.0) > 1e-9:
        problems.append(f"do not sum to 1: the fused base is scaled by {sum(bw):g}")
    if not all(0.0 <= w <= 1.0 for w in bw):
        problems.append("are not both in [0, 1]: the fused base is not a weighted average")
    if problems:
        warnings.warn(f"base_weights {bw} {'; '.join(problems)}", UserWarning, stacklevel=4)


@dataclass(frozen=True)
class FusionOptions:
    """Parameters of one fusion run (METHOD.md), validated on construction.

    Integer fields accept numpy integers; :meth:`coerce` builds options from
    ``options=None, **overrides`` as every entry point takes them.

    Parameters
    ----------
    weights : str or path-like
        ``"imagenet"`` (torchvision's ``ResNet152_Weights.IMAGENET1K_V1``, the paper's era), the
        name of another weight enum member (``"IMAGENET1K_V2"``), ``"random"`` (seeded random
        initialisation, for tests only: results are marked as not pretrained), or the path of a
        torchvision-format ``state_dict`` file. ``"imagenet"`` and ``"random"`` are keywords in
        any case (``"Random"`` is ``"random"``; write ``"./Random"`` for a file of that name).
    seed : int
        Seed of the ``"random"`` weights, 0 to 2**64 - 1.
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
        Side of the box (mean) filter ``Z`` of eq. 1: odd, 3 to :data:`MAX_KERNEL_SIZE`, and a
        run also needs it below twice the image's shorter side.
    base_weights : (float, float) or None
        ``(λ_1, λ_2)`` of eq. 3, infrared first; ``None``: ``(0.6, 0.4)`` (the paper), or
        ``(0.5, 0.5)`` for ``variant="published-code"``. A warning is issued when they do not
        sum to 1 or one lies outside ``[0, 1]`` (other weights are a variant, not the paper).
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
        ``float16`` runs on a GPU only (refused on the CPU); features that overflow the
        precision's range are an error, never a black image.
    tile : int or None
        Tile side in pixels for tiled feature extraction of large images (a multiple of 32), or
        ``None`` for one pass over the whole image.
    """

    weights: str | os.PathLike = field(
        default="imagenet",
        metadata=_meta(
            "'imagenet' (torchvision's ResNet152_Weights.IMAGENET1K_V1, downloaded on first "
            "use), another weights name such as IMAGENET1K_V2, 'random' (seeded, for tests: "
            "not the paper's network) or a state_dict file"
        ),
    )
    seed: int = field(default=0, metadata=_meta("seed of 'random' weights"))
    device: str = field(default="auto", metadata=_meta("auto, cpu, cuda, cuda:N or mps"))
    backbone: str = field(default="resnet152", metadata=_meta("feature network", choices=BACKBONES))
    variant: str = field(
        default="paper",
        metadata=_meta(
            "'paper' or 'published-code' (the authors' MATLAB code's choices)", choices=VARIANTS
        ),
    )
    kernel_size: int = field(
        default=31,
        metadata=_meta(
            f"box filter side (eq. 1): odd, 3 to {MAX_KERNEL_SIZE}, under twice the image side"
        ),
    )
    base_weights: tuple[float, float] | None = field(
        default=None,
        metadata=_meta(
            "lambda_1 lambda_2 of eq. 3 (default: 0.6 0.4; 0.5 0.5 for published-code)",
            metavar=("IR", "VIS"),
            type=float,
        ),
    )
    layers: tuple[str, ...] | None = field(
        default=None,
        metadata=_meta(
            "comma-separated feature levels (default: all of the backbone's, e.g. "
            "conv1,conv2_1,conv3_1,conv4_1,conv5_1 for resnet152)",
            separator=",",
        ),
    )
    norm: str = field(default="l1", metadata=_meta("channel norm of eq. 5", choices=NORMS))
    value_range: Any = field(
        default=None,
        metadata=_meta(
            "input value range mapped to [0, 1] (default: uint8 / 255, else min/max)",
            metavar=("LOW", "HIGH"),
            type=float,
        ),
    )
    color: str | None = field(
        default=None, metadata=_meta("output of an RGB visible image", choices=COLORS)
    )
    batch_size: int | None = field(
        default=None,
        metadata=_meta("planes per forward pass (default: 1 on CPU, 8 on GPU)", type=int),
    )
    precision: str = field(
        default="float32",
        metadata=_meta("autocast of the network (float16: GPU only)", choices=PRECISIONS),
    )
    tile: int | None = field(
        default=None,
        metadata=_meta("tile side for large images (multiple of 32)", type=int),
    )

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen dataclass: normalise fields in place
        if isinstance(self.weights, os.PathLike):
            set_(self, "weights", os.fspath(self.weights))
        if not isinstance(self.weights, str) or not self.weights:
            raise ValueError(
                f"weights must be 'imagenet', 'random' or a path, got {self.weights!r}"
            )
        if self.weights.lower() in WEIGHT_KEYWORDS:  # 'Random', 'ImageNet': keywords, not paths
            set_(self, "weights", self.weights.lower())
        seed = _integer("seed", self.seed)
        if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
            raise ValueError(
                f"seed must be an integer from 0 to 2**64 - 1 (torch's seed range), got {seed}"
            )
        set_(self, "seed", seed)
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(
                f"device must be a string such as 'auto' or 'cpu', got {self.device!r}"
            )
        for name, choices in (("backbone", BACKBONES), ("variant", VARIANTS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        k = _integer("kernel_size", self.kernel_size)
        if k < 3 or k % 2 == 0 or k > MAX_KERNEL_SIZE:
            raise ValueError(
                f"kernel_size must be an odd integer from 3 to {MAX_KERNEL_SIZE}, got {k!r}"
            )
        set_(self, "kernel_size", k)
        if self.base_weights is None:
            paper = self.variant == "paper"
            set_(self, "base_weights", (0.6, 0.4) if paper else (0.5, 0.5))
        bw = _check_pair("base_weights", self.base_weights)
        set_(self, "base_weights", bw)
        _warn_base_weights(bw)
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
        if self.batch_size is not None:
            b = _integer("batch_size", self.batch_size, "None or a positive integer")
            if b < 1:
                raise ValueError(f"batch_size must be None or a positive integer, got {b!r}")
            set_(self, "batch_size", b)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.tile is not None:
            t = _integer("tile", self.tile, "None or a positive multiple of 32")
            if t < 32 or t % 32:
                raise ValueError(f"tile must be None or a positive multiple of 32, got {t!r}")
            set_(self, "tile", t)

    @classmethod
    def coerce(cls, options: FusionOptions | None = None, /, **overrides: Any) -> FusionOptions:
        """The options of a run from ``options`` and single-field ``overrides``.

        ``options=None`` starts from the defaults; keyword arguments replace single fields (and
        are validated). Every function that takes ``options=None, **overrides`` (``fuse``,
        ``fuse_lazy``, ``run_batch``, ``fuse_layers``, ...) resolves them here.

        Raises
        ------
        ValueError
            ``options`` is not a :class:`FusionOptions`, an override names no field, or a value
            is invalid.
        """
        if options is not None and not isinstance(options, cls):
            raise ValueError(f"options must be a FusionOptions, got {type(options).__name__}")
        unknown = sorted(set(overrides) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: the "
                f"options are {', '.join(cls.__dataclass_fields__)}"
            )
        if options is None:
            return cls(**overrides)
        return options.replace(**overrides) if overrides else options

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
