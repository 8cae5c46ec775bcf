"""The methods a comparison knows (:data:`METHODS`): the paper's method, its variants and the
baselines of :mod:`napari_resfuse.baselines`, each as one function of two grey images; and
each method's folder of fused images in a report."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .baselines import BASELINES, DEEP_BASELINES
from .io import IMAGE_SUFFIXES, write_text_atomic

__all__ = [
    "BACKBONE_OF_BASELINE",
    "DEFAULT_METHODS",
    "METHODS",
    "Method",
    "resolve_methods",
]


@dataclass(frozen=True)
class Method:
    """One fusion method of the comparison.

    Attributes
    ----------
    name : str
        Its name in :data:`METHODS`, ``--methods`` and the report.
    description : str
        What it is, with its source.
    backbone : str or None
        The network whose weights it loads (``weights`` may name a file per backbone), or None.
    function : callable
        ``function(infrared, visible, *, weights, seed, device) -> fused``: two grey float
        ``[0, 1]`` images in, the fused float image (unclipped) out.
    """

    name: str
    description: str
    backbone: str | None
    function: Callable[..., np.ndarray]


def _engine(**overrides: Any) -> Callable[..., np.ndarray]:
    def run(infrared, visible, *, weights, seed, device):
        from .method.fuse import fuse
        from .options import FusionOptions

        options = FusionOptions(
            weights=weights, seed=seed, device=device, value_range=(0.0, 1.0), **overrides
        )
        return fuse(infrared, visible, options).fused_unclipped

    return run


def _baseline(name: str) -> Callable[..., np.ndarray]:
    function = BASELINES[name]

    def run(infrared, visible, *, weights, seed, device):
        if name in DEEP_BASELINES:
            return function(infrared, visible, weights=weights, seed=seed, device=device)
        return function(infrared, visible)

    return run


#: The network each deep baseline loads.
BACKBONE_OF_BASELINE: dict[str, str] = {"vgg19_li2018": "vgg19", "resnet50_zca": "resnet50"}

_BASELINE_DESCRIPTIONS = {
    "average": "pixel average",
    "two_scale_max": "31 x 31 box two-scale decomposition, averaged base, choose-max detail",
    "gff": "guided filtering fusion (Li, Kang & Hu 2013)",
    "cbf": "cross bilateral filter fusion (Kumar 2015), port of the published code",
    "wls": "weighted least squares fusion (Ma, Zhou et al. 2017), port of the published code",
    "vgg19_li2018": "VGG-19 multi-layer fusion (Li, Wu & Kittler 2018), port of their code",
    "resnet50_zca": "ResNet-50 + ZCA fusion (Li, Wu & Durrani 2019), port of their code",
}


def _build_methods() -> dict[str, Method]:
    paper = "Zhang et al. 2022"
    engine = {
        "resfuse": ({}, f"{paper}: the paper's method (ResNet-152, l1-norm)", "resnet152"),
        "resfuse-l2": ({"norm": "l2"}, f"{paper} with the l2-norm (eq. 5)", "resnet152"),
        "resfuse-resnet101": (
            {"backbone": "resnet101"},
            f"{paper} on ResNet-101 (same five block outputs)",
            "resnet101",
        ),
        "resfuse-resnet50": (
            {"backbone": "resnet50"},
            f"{paper} on ResNet-50 (same five block outputs)",
            "resnet50",
        ),
        "resfuse-vgg19": (
            {"backbone": "vgg19"},
            f"{paper} on VGG-19 (relu1_1 ... relu5_1)",
            "vgg19",
        ),
        "resfuse-published-code": (
            {"variant": "published-code"},
            f"{paper}, the choices of the authors' published MATLAB code",
            "resnet152",
        ),
    }
    methods = {
        name: Method(name, description, backbone, _engine(**overrides))
        for name, (overrides, description, backbone) in engine.items()
    }
    for name in BASELINES:
        methods[name] = Method(
            name,
            _BASELINE_DESCRIPTIONS.get(name, name),
            BACKBONE_OF_BASELINE.get(name),
            _baseline(name),
        )
    return methods


#: Name -> :class:`Method`: the method's variants first, then the baselines.
METHODS: dict[str, Method] = _build_methods()

#: What a comparison runs unless told otherwise: the paper's method and the classic baselines
#: (no other network, so no other weights download).
DEFAULT_METHODS: tuple[str, ...] = ("resfuse", "average", "two_scale_max", "gff", "cbf", "wls")


def resolve_methods(methods: str | Iterable[str] | None) -> tuple[str, ...]:
    """Check method names; ``None`` gives :data:`DEFAULT_METHODS`, ``"all"`` every method.

    A comma-separated string is split. Order is kept, duplicates dropped.

    Raises
    ------
    ValueError
        An unknown name (the message lists the known ones), or no method at all.
    """
    if methods is None:
        return DEFAULT_METHODS
    if isinstance(methods, str):
        methods = [part.strip() for part in methods.split(",") if part.strip()]
    chosen: list[str] = []
    for name in methods:
        if name == "all":
            chosen.extend(METHODS)
            continue
        if name not in METHODS:
            raise ValueError(
                f"methods: unknown method {name!r}; choose from {', '.join(METHODS)} (or 'all')"
            )
        chosen.append(name)
    chosen = list(dict.fromkeys(chosen))
    if not chosen:
        raise ValueError("methods: choose at least one method")
    return tuple(chosen)


def _weights_for(method: Method, weights: str | Mapping[str, str]) -> str | None:
    """The weights a method loads: one setting for every network, or a per-backbone mapping
    (backbones not in the mapping use ``"imagenet"``)."""
    if method.backbone is None:
        return None
    if isinstance(weights, Mapping):
        return str(weights.get(method.backbone, "imagenet"))
    return str(weights)


def _settings(method: Method, weights, seed: int, registration=None) -> dict[str, Any]:
    """What identifies a method's outputs: if any of it changes, they are fused again."""
    chosen = _weights_for(method, weights)
    stamp: dict[str, Any] = {"method": method.name, "package_version": __version__}
    if registration is not None:  # pairs aligned first (compare(..., registration=))
        stamp["registration"] = registration
    if chosen is not None:
        stamp["weights"] = chosen
        path = Path(chosen).expanduser()
        if path.is_file():
            stat = path.stat()
            stamp["weights"] = str(path.resolve())
            stamp["weights_file"] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if chosen == "random":
            stamp["seed"] = seed
    return stamp


def _read_settings(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class _MethodFolder:
    """A method's folder of fused images (``fused/<method>/``) and its ``settings.json``: the
    settings that made the images, and the names of the images a comparison wrote there.

    When the settings differ from this run's, the images written under the old ones are
    removed first (so none is taken for this run's even if it stops before replacing them
    all); files a comparison did not write are never removed.
    """

    def __init__(self, out: Path, method: Method, weights, seed: int, registration=None):
        self.path = out / "fused" / method.name
        self.path.mkdir(parents=True, exist_ok=True)
        self.stamp_path = self.path / "settings.json"
        stamp = _settings(method, weights, seed, registration)
        previous = _read_settings(self.stamp_path)
        previous = previous if isinstance(previous, dict) else {}
        written = previous.pop("written", None)
        self.same = previous == stamp
        if not self.same and previous.get("method") == method.name:
            for old in self.path.iterdir():  # before "written" was kept: every image was ours
                if old.suffix.lower() in IMAGE_SUFFIXES and (
                    written is None or old.name in written
                ):
                    old.unlink()
        self.stamp = {**stamp, "written": sorted(written or []) if self.same else []}
        write_text_atomic(self.stamp_path, json.dumps(self.stamp, indent=2) + "\n")

    def wrote(self, path: Path) -> None:
        if path.name not in self.stamp["written"]:
            self.stamp["written"].append(path.name)
            write_text_atomic(self.stamp_path, json.dumps(self.stamp, indent=2) + "\n")
