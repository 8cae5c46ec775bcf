"""The feature network of eq. 4: torchvision's ResNet-152, truncated after ``layer4[0]``.

Also ResNet-50/101 and VGG-19 (extensions). Weights come from torchvision's weights API and its
cache (``"imagenet"``), from a local ``state_dict`` file, or from a seeded random
initialisation (``"random"``, for tests). A built network is kept per (backbone, weights, taps,
device) and reused across calls in a process.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision import models
from torchvision.models.feature_extraction import create_feature_extractor

from .levels import level_taps

__all__ = [
    "RESNET_NODES",
    "FeatureNetwork",
    "WeightsNotAvailableError",
    "cached_networks",
    "clear_cache",
    "get_feature_network",
    "imagenet_weights_file",
    "load_weights_checked",
    "resolve_device",
]

#: METHOD.md's level names -> torchvision ResNet graph nodes (each a block's output after its
#: final ReLU): conv1 = relu(bn1(conv1(x))), conv2_1 = layer1[0], ..., conv5_1 = layer4[0].
RESNET_NODES: dict[str, str] = {name: tap.node for name, tap in level_taps("resnet152").items()}

_BUILDERS = {
    "resnet152": (models.resnet152, models.ResNet152_Weights),
    "resnet101": (models.resnet101, models.ResNet101_Weights),
    "resnet50": (models.resnet50, models.ResNet50_Weights),
    "vgg19": (models.vgg19, models.VGG19_Weights),
}


class WeightsNotAvailableError(FileNotFoundError):
    """The pretrained weights are neither in torch's cache nor downloadable."""


@dataclass(frozen=True)
class FeatureNetwork:
    """A truncated backbone and what identifies it."""

    module: nn.Module  # returns {node: (B, C, ceil(H / stride), ceil(W / stride))}
    backbone: str
    weights_id: str  # e.g. "imagenet:IMAGENET1K_V1", "random:seed=0", "file:<path>#sha256=..."
    pretrained: bool
    nodes: tuple[str, ...]
    device: torch.device


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA, else MPS, else CPU; any other name is checked to be usable."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"device {device!r} is not a device name: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s)"
            )
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {device!r} was asked for but MPS is not available here")
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r} is not supported: use 'cpu', 'cuda' or 'mps'")
    return dev


def _weights_enum_member(backbone: str, weights: str):
    enum = _BUILDERS[backbone][1]
    name = "IMAGENET1K_V1" if weights.lower() == "imagenet" else weights
    try:
        return enum[name.upper()]  # enum names in any case: "imagenet1k_v2" is IMAGENET1K_V2
    except KeyError:
        return None


def imagenet_weights_file(backbone: str = "resnet152", weights: str = "imagenet") -> Path:
    """Where torchvision keeps (or would keep) a pretrained weights file."""
    member = _weights_enum_member(backbone, weights)
    if member is None:
        raise ValueError(f"{weights!r} is not a weights name of {backbone}")
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(member.url)


def _imagenet_state_dict(backbone: str, member) -> dict:
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(member.url)
    try:
        # torchvision's own path: loads from the cache, or downloads into it (hash-checked).
        return member.get_state_dict(progress=True, check_hash=True)
    except OSError as exc:  # URLError and socket errors are OSErrors
        raise WeightsNotAvailableError(
            f"the pretrained {backbone} weights ({type(member).__name__}.{member.name}) are not "
            f"in torch's cache and could not be downloaded ({exc}). Either put the file "
            f"'{cached.name}' (from {member.url}) into {cached.parent}, or pass its path: "
            f"fuse(..., weights='/path/to/{cached.name}') / resfuse fuse --weights PATH"
        ) from exc


def _load_error(path: Path, exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one line (never torch's advice
    to load it unsafely)."""
    if isinstance(exc, pickle.UnpicklingError) and "Unsupported global" in str(exc):
        return (
            "it holds Python objects other than tensors, which are not loaded (unsafe to "
            "unpickle); save only the model's state_dict"
        )
    if path.stat().st_size == 0:
        return "the file is empty (0 bytes)"
    return "not a file written by torch.save, or a truncated or corrupt one"


def _file_state_dict(path: Path) -> dict:
    if path.is_dir():
        raise ValueError(
            f"weights {str(path)!r} is a directory: pass the state_dict file inside it, or "
            "'imagenet' or 'random'"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {str(path)!r} does not exist (weights are 'imagenet', a torchvision "
            "weights name such as 'IMAGENET1K_V2', 'random', or a state_dict file)"
        )
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: not for users
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean "not a readable state_dict"
        reason = _load_error(path, exc)
        raise ValueError(
            f"weights file {str(path)!r} could not be read as a PyTorch state_dict: {reason}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint that wraps the state_dict
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"weights file {str(path)!r} does not hold a state_dict (a dict of tensors)"
        )
    return state


def _check_finite(state: dict, source: str, keys) -> None:
    """Every floating-point tensor of ``state`` under ``keys`` holds finite values."""
    for key in sorted(keys):
        tensor = state.get(key)
        if tensor is None or not tensor.is_floating_point():
            continue
        if not bool(torch.isfinite(tensor).all()):
            bad = "NaN" if bool(torch.isnan(tensor).any()) else "inf"
            raise ValueError(f"{source}: the state_dict contains {bad} in {key}")


def load_weights_checked(backbone: str, weights: str) -> dict | None:
    """The state_dict that ``weights`` names for ``backbone``, checked as a run checks it.

    ``None`` for ``"random"``. Raises the errors building the network would raise (missing
    file, a directory, unreadable file, not a dict of tensors, NaN or inf values,
    :class:`WeightsNotAvailableError`), without building the network: a check to run before
    starting long jobs.
    """
    if backbone not in _BUILDERS:
        raise ValueError(f"backbone must be one of {tuple(_BUILDERS)}, got {backbone!r}")
    if weights == "random":
        return None
    member = _weights_enum_member(backbone, weights)
    if member is not None:
        state, source = _imagenet_state_dict(backbone, member), member.url
    else:
        path = Path(weights).expanduser()
        state, source = _file_state_dict(path), f"weights file {str(path)!r}"
    _check_finite(state, source, state)
    return state


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _load_into(model: nn.Module, state: dict, needed: set[str], source: str, backbone: str):
    """Load ``state`` into ``model``; every key the truncated network needs must be there."""
    expected = set(model.state_dict())
    unexpected = sorted(set(state) - expected)
    # BatchNorm's ``num_batches_tracked`` counters play no part in evaluation, and files saved
    # before torch 0.4.1 (torchvision's own ImageNet checkpoints among them) lack them.
    missing = sorted(k for k in needed - set(state) if not k.endswith(".num_batches_tracked"))
    _check_finite(state, source, needed)
    if unexpected or missing:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {unexpected[:3]})")
        raise ValueError(f"{source} is not a torchvision {backbone} state_dict: {'; '.join(parts)}")
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ValueError(f"{source} does not fit torchvision's {backbone}: {exc}") from exc


def _build(backbone: str, weights: str, seed: int, nodes: tuple[str, ...], device: torch.device):
    builder, _ = _BUILDERS[backbone]
    with torch.random.fork_rng(devices=[]):
        # Seeded so that "random" weights are reproducible; the global RNG is left untouched.
        torch.manual_seed(seed)
        model = builder(weights=None)
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            # An in-place ReLU would overwrite a tapped tensor after it was returned (e.g. a
            # residual sum, or any tap a caller names by node); out of place, every tap holds
            # the value its node computed.
            module.inplace = False
    truncated = create_feature_extractor(model, return_nodes=list(nodes))
    needed = set(truncated.state_dict())  # only what is computed up to the deepest level

    if weights == "random":
        weights_id, pretrained = f"random:seed={seed}", False
    elif (member := _weights_enum_member(backbone, weights)) is not None:
        _load_into(model, _imagenet_state_dict(backbone, member), needed, member.url, backbone)
        weights_id, pretrained = f"imagenet:{member.name}", True
    else:
        path = Path(weights).expanduser()
        state = _file_state_dict(path)
        _load_into(model, state, needed, f"weights file {str(path)!r}", backbone)
        weights_id, pretrained = f"file:{path.resolve()}#sha256={_file_digest(path)}", True
    # The extractor shares its layers' parameters with ``model``, so it now holds the weights.
    truncated.eval().requires_grad_(False).to(device)
    return FeatureNetwork(truncated, backbone, weights_id, pretrained, nodes, device)


_CACHE: dict[tuple, FeatureNetwork] = {}
_LOCK = threading.Lock()


def _cache_key(backbone, weights, seed, nodes, device) -> tuple:
    key_weights = weights
    if weights != "random" and _weights_enum_member(backbone, weights) is None:
        path = Path(weights).expanduser()
        stat = path.stat() if path.is_file() else None
        key_weights = (str(path.resolve()), stat and (stat.st_size, stat.st_mtime_ns))
    return (backbone, key_weights, seed if weights == "random" else None, nodes, str(device))


def get_feature_network(
    backbone: str = "resnet152",
    weights: str = "imagenet",
    *,
    seed: int = 0,
    layers: tuple[str, ...] | None = None,
    nodes: tuple[str, ...] | None = None,
    device: str | torch.device = "cpu",
) -> FeatureNetwork:
    """The truncated network for these settings, built on first use and cached.

    Nothing after the deepest requested output is part of the returned module (torchvision's
    ``create_feature_extractor`` keeps only the graph needed for the requested outputs).
    ``layers`` names levels of the paper's table for ``backbone`` (all five by default);
    ``nodes`` names torchvision graph nodes directly instead. The module returns a dict keyed
    by node name.

    Raises
    ------
    WeightsNotAvailableError
        ``"imagenet"`` weights neither cached nor downloadable (the message says how to fix it).
    FileNotFoundError, ValueError
        A weights file that is missing, unreadable or for another architecture.
    """
    if backbone not in _BUILDERS:
        raise ValueError(f"backbone must be one of {tuple(_BUILDERS)}, got {backbone!r}")
    device = device if isinstance(device, torch.device) else resolve_device(device)
    if nodes is None:
        taps = level_taps(backbone)
        nodes = tuple(taps[name].node for name in (layers or taps))
    nodes = tuple(nodes)
    key = _cache_key(backbone, weights, seed, nodes, device)
    with _LOCK:
        network = _CACHE.get(key)
        if network is None:
            network = _build(backbone, weights, seed, nodes, device)
            _CACHE[key] = network
    return network


def cached_networks() -> int:
    """How many built networks this process keeps (see :func:`get_feature_network`)."""
    with _LOCK:
        return len(_CACHE)


def clear_cache() -> None:
    """Forget every built network (frees their memory once no result refers to them)."""
    with _LOCK:
        _CACHE.clear()
