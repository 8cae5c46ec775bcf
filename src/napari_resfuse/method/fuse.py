"""The fusion run: eq. 3, 10 and 11, and the orchestration of eq. 1 to 9.

``iter_fuse`` is a generator that yields a :class:`Progress` after each stage (so a caller can
show progress and stop between stages) and returns a :class:`FusionResult`; ``fuse`` runs it to
the end. Per-pixel work stays on the device as tensors; stacks go through in batches of planes,
each batch one forward pass of ``2 × batch`` images (infrared planes first, then visible).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..options import FusionOptions
from . import published_code
from .backbones import FeatureNetwork, get_feature_network, resolve_device
from .decompose import decompose
from .inputs import as_array, prepare_pair, ycbcr_to_rgb
from .levels import PUBLISHED_CODE_UNITS, level_taps
from .tiling import DEFAULT_HALO, auto_tile, tiled_activities
from .weights import activity, level_weights, max_select, smooth, upsample

__all__ = [
    "STAGES",
    "FusionCancelled",
    "FusionResult",
    "NonFiniteResultError",
    "Progress",
    "fuse",
    "iter_fuse",
    "run_with_progress",
]

#: The stages a run reports, in order; all but the first repeat per batch of planes.
STAGES = ("load model", "decompose", "features", "weights", "reconstruct")

_PRECISION_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


class FusionCancelled(Exception):
    """A run was stopped before it finished; no result exists."""


@dataclass(frozen=True)
class Progress:
    """Where a run is: ``step`` of ``total`` steps done, the last one being ``stage``."""

    stage: str
    step: int
    total: int
    planes_done: int
    n_planes: int


@dataclass
class FusionResult:
    """Everything a run produced. Arrays have the inputs' spatial shape ``S = (..., H, W)``.

    Attributes
    ----------
    fused : ndarray
        ``F`` (eq. 11) clipped to ``[0, 1]``, float32, shape ``S`` (``S + (3,)`` for an RGB
        visible input with ``color="ycbcr"``).
    fused_unclipped : ndarray
        The same before clipping.
    base, detail : ndarray
        ``(2, *S)``: ``I_k^b`` and ``I_k^d`` (eq. 1, 2), infrared first.
    fused_base, fused_detail : ndarray
        ``F_b`` (eq. 3) and ``F_d`` (eq. 10), shape ``S``.
    level_weights : ndarray
        ``(2, n_levels, *S)``: the upsampled ``Ŵ_k^i`` (eq. 8).
    weights : ndarray
        ``(2, *S)``: ``Ŵ_k = max_i Ŵ_k^i`` (eq. 9).
    winning_level : ndarray
        ``(2, *S)`` uint8: the index into ``levels`` of the level that gave ``Ŵ_k``.
    levels : tuple of str
        The feature levels used, in the order of ``level_weights``' second axis.
    params : dict
        Options, resolved device, weights identity (``pretrained`` is False for random weights),
        input shapes, dtypes and value ranges, package version: enough to reproduce the run.
    timings : dict
        Seconds per stage (summed over batches) and in total.
    valid : ndarray or None
        With a registration and ``crop=None``: ``(H, W)`` bool, where both images see the scene
        (elsewhere one image was filled in, see :func:`fuse`); otherwise None.
    """

    fused: np.ndarray
    fused_unclipped: np.ndarray
    base: np.ndarray
    detail: np.ndarray
    fused_base: np.ndarray
    fused_detail: np.ndarray
    level_weights: np.ndarray
    weights: np.ndarray
    winning_level: np.ndarray
    levels: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    valid: np.ndarray | None = None


class NonFiniteResultError(ValueError):
    """A run produced NaN or infinite values; the message names the cause."""


def run_with_progress(
    generator: Generator[Any, None, Any], on_progress: Callable[[Any], Any] | None = None
) -> Any:
    """Run a progress generator to its end and return its return value.

    Each yielded event is passed to ``on_progress`` (when given). If ``on_progress`` raises
    (a cancel) or the run fails, the generator is closed, so its clean-up runs. This is the
    loop behind :func:`fuse`, :func:`~napari_resfuse.save_lazy` and the progress bars.
    """
    try:
        while True:
            try:
                event = next(generator)
            except StopIteration as stop:
                return stop.value
            if on_progress is not None:
                on_progress(event)
    finally:
        generator.close()


class _Clock:
    """Per-stage wall time; waits for the device so that asynchronous work is counted."""

    def __init__(self, device: torch.device):
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.totals: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.start = self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        self.sync()
        now = time.perf_counter()
        self.totals[stage] += now - self.last
        self.last = now

    def timings(self) -> dict[str, float]:
        return {**self.totals, "total": time.perf_counter() - self.start}


def _check_run(opts: FusionOptions, device: torch.device, size: tuple[int, int]) -> None:
    """What the options alone cannot check: the device's precision and the image's size."""
    if opts.precision == "float16" and device.type == "cpu":
        raise ValueError(
            "precision 'float16' is not supported on the CPU (no speed gain there, and deep "
            "features overflow float16's range): use 'float32' or 'bfloat16' on the CPU"
        )
    limit = 2 * min(size) - 1
    if opts.variant == "paper" and opts.kernel_size > limit:
        raise ValueError(
            f"kernel_size {opts.kernel_size} is too large for images of {size[0]} x {size[1]} "
            f"px: at most {limit} (twice the shorter side, minus 1)"
        )


def _check_finite(
    activities: list[torch.Tensor], opts: FusionOptions, network: FeatureNetwork
) -> None:
    """Non-finite features are an error that names the level and the likely cause."""
    for name, act in zip(opts.layers, activities, strict=True):
        if bool(torch.isfinite(act).all()):
            continue
        bad = "NaN" if bool(torch.isnan(act).any()) else "inf"
        if opts.precision != "float32":
            cause = (
                f"the network's features overflowed in {opts.precision} on "
                f"{network.device.type}: use precision='float32'"
            )
        else:
            cause = (
                f"the network's features exceed float32's range with these weights "
                f"({network.weights_id})"
            )
        raise NonFiniteResultError(f"the features of level {name} contain {bad}: {cause}")


def feature_activities(
    network: FeatureNetwork, details: torch.Tensor, options: FusionOptions
) -> list[torch.Tensor]:
    """Eq. 4 and 5: the activity map ``T`` of each selected level for a batch of detail images.

    ``details`` is ``(B, 1, H, W)``; it is repeated to three channels and fed unnormalised.
    Returns one ``(B, 1, ceil(H / s), ceil(W / s))`` float32 map per level of
    ``options.layers`` (``s`` its stride). ``published-code`` always uses the l1 norm.
    """
    taps = level_taps(options.backbone, options.variant)
    norm = options.norm if options.variant == "paper" else "l1"
    images = details.expand(-1, 3, -1, -1)  # (B, 3, H, W), no copy
    dtype = _PRECISION_DTYPES.get(options.precision)
    with torch.inference_mode():
        if dtype is None:
            features = network.module(images)
        else:
            with torch.autocast(device_type=details.device.type, dtype=dtype):
                features = network.module(images)
        features[None] = images  # the published code's "data" level: the input itself
        return [activity(features[taps[name].node], norm) for name in options.layers]


def _activities(
    network: FeatureNetwork, details: torch.Tensor, options: FusionOptions, tile: int | None
) -> tuple[list[torch.Tensor], int | None]:
    """Eq. 4-5 in one pass, or in tiles; out of GPU memory, retries with smaller tiles.

    Returns the activity maps and the tile side used (None: one pass).
    """
    height, width = details.shape[-2:]
    taps = level_taps(options.backbone, options.variant)
    strides = [taps[name].stride for name in options.layers]

    def compute(crop: torch.Tensor) -> list[torch.Tensor]:
        return feature_activities(network, crop, options)

    while True:
        try:
            if tile is None or tile >= max(height, width):
                return compute(details), None
            return tiled_activities(compute, details, strides, tile, DEFAULT_HALO), tile
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            side = tile or max(height, width)
            smaller = max(128, (side // 2) // 32 * 32)
            if smaller >= side:
                raise
            warnings.warn(
                f"out of GPU memory for {side} px tiles; retrying with {smaller} px tiles",
                RuntimeWarning,
                stacklevel=2,
            )
            tile = smaller


def _paper_detail_fusion(
    activities: list[torch.Tensor], details: torch.Tensor, batch: int
) -> tuple[torch.Tensor, ...]:
    """Eq. 6-10: returns level weights ``(2B, L, M, N)``, fused detail ``(B, M, N)``,
    max weights ``(2B, M, N)`` and the winning level ``(2B, M, N)``."""
    size = tuple(details.shape[-2:])
    upsampled = []
    for act in activities:
        smoothed = smooth(act)  # eq. 6
        w_ir, w_vis = level_weights(smoothed[:batch], smoothed[batch:])  # eq. 7
        upsampled.append(upsample(torch.cat([w_ir, w_vis]), size))  # eq. 8, (2B, 1, M, N)
    level_w = torch.cat(upsampled, dim=1)  # (2B, L, M, N)
    w_max, w_index = max_select(level_w)  # eq. 9, (2B, M, N)
    fused_detail = w_max[:batch] * details[:batch, 0] + w_max[batch:] * details[batch:, 0]  # eq. 10
    return level_w, fused_detail, w_max, w_index


def _published_detail_fusion(
    activities: list[torch.Tensor], details: torch.Tensor, batch: int, layers
) -> tuple[torch.Tensor, ...]:
    """The published code's detail fusion (see :mod:`.published_code`)."""
    energies = [published_code.squared_activity(act) for act in activities]
    units = [PUBLISHED_CODE_UNITS[name] for name in layers]
    return published_code.fuse_details(energies, units, details, batch)


def iter_fuse(
    infrared,
    visible,
    options: FusionOptions | None = None,
    *,
    registration=None,
    grid: str = "visible",
    crop: str | None = "overlap",
    **overrides: Any,
) -> Generator[Progress, None, FusionResult]:
    """Fuse an infrared and a visible image, yielding progress after each stage.

    Takes the same arguments as :func:`fuse`. Closing the generator (or not resuming it) stops
    the run between stages; the result is the generator's return value.
    """
    opts = FusionOptions.coerce(options, **overrides)
    infrared, visible = as_array(infrared, "infrared"), as_array(visible, "visible")
    aligned = None
    if registration is not None:  # put both images on one grid first (napari_resfuse.register)
        from ..register._apply import align_pair

        aligned = align_pair(
            infrared, visible, registration, grid=grid, crop=crop, value_range=opts.value_range
        )
        infrared, visible = aligned.infrared, aligned.visible
        opts = opts.replace(value_range=aligned.value_range)
    pair = prepare_pair(infrared, visible, opts.value_range)
    device = resolve_device(opts.device)
    _check_run(opts, device, pair.infrared.shape[-2:])
    clock = _Clock(device)
    n_planes, height, width = pair.infrared.shape
    batch_size = opts.batch_size or (1 if device.type == "cpu" else 8)
    n_batches = -(-n_planes // batch_size)
    total = 1 + 4 * n_batches
    step = 0

    def progress(stage: str, planes_done: int) -> Progress:
        nonlocal step
        clock.lap(stage)
        step += 1
        return Progress(stage, step, total, planes_done, n_planes)

    taps = level_taps(opts.backbone, opts.variant)
    nodes = tuple(taps[name].node for name in opts.layers if taps[name].node is not None)
    network = get_feature_network(
        opts.backbone, opts.weights, seed=opts.seed, nodes=nodes, device=device
    )
    paper = opts.variant == "paper"
    yield progress("load model", 0)

    n_levels = len(opts.layers)
    base = np.empty((2, n_planes, height, width), np.float32)
    detail = np.empty_like(base)
    weights = np.empty_like(base)
    winning = np.empty(base.shape, np.uint8)
    level_w = np.empty((2, n_levels, n_planes, height, width), np.float32)
    fused_base = np.empty((n_planes, height, width), np.float32)
    fused_detail = np.empty_like(fused_base)
    lam_ir, lam_vis = opts.base_weights

    for start in range(0, n_planes, batch_size):
        stop = min(start + batch_size, n_planes)
        b = stop - start
        planes = np.concatenate([pair.infrared[start:stop], pair.visible[start:stop]])
        images = torch.from_numpy(planes).to(device)[:, None]  # (2b, 1, H, W)

        if paper:
            bases, details = decompose(images, opts.kernel_size)  # eq. 1, 2
        else:
            bases, details = published_code.tikhonov_lowpass(images)
        yield progress("decompose", start)

        tile = opts.tile or auto_tile(2 * b, height, width, device)
        activities, tile_used = _activities(network, details, opts, tile)  # eq. 4, 5
        _check_finite(activities, opts, network)
        yield progress("features", start)

        if paper:  # eq. 6-10
            upsampled, f_detail, w_max, w_index = _paper_detail_fusion(activities, details, b)
        else:
            upsampled, f_detail, w_max, w_index = _published_detail_fusion(
                activities, details, b, opts.layers
            )
        yield progress("weights", start)

        f_base = lam_ir * bases[:b, 0] + lam_vis * bases[b:, 0]  # eq. 3

        # One transfer per array; (2b, ...) splits into (infrared b, visible b).
        split = (2, b, height, width)
        base[:, start:stop] = bases.reshape(split).cpu().numpy()
        detail[:, start:stop] = details.reshape(split).cpu().numpy()
        weights[:, start:stop] = w_max.reshape(split).cpu().numpy()
        winning[:, start:stop] = w_index.reshape(split).to(torch.uint8).cpu().numpy()
        level_w[:, :, start:stop] = (
            upsampled.reshape(2, b, n_levels, height, width).transpose(1, 2).cpu().numpy()
        )
        fused_base[start:stop] = f_base.cpu().numpy()
        fused_detail[start:stop] = f_detail.cpu().numpy()
        yield progress("reconstruct", stop)

    fused = fused_base + fused_detail  # eq. 11
    color = opts.color or "ycbcr"
    if pair.chroma is not None and color == "ycbcr":
        fused = ycbcr_to_rgb(np.concatenate([fused[..., None], pair.chroma], axis=-1))
        fused = fused.astype(np.float32)
    if not np.isfinite(fused).all():  # a safety net: finite features give a finite image
        bad = "NaN" if np.isnan(fused).any() else "inf"
        raise NonFiniteResultError(f"the fused image contains {bad} ({opts.precision} on {device})")
    shape = pair.spatial_shape
    out_shape = shape + fused.shape[3:]
    clock.lap("reconstruct")
    return FusionResult(
        fused=np.clip(fused, 0.0, 1.0).reshape(out_shape),
        fused_unclipped=fused.reshape(out_shape),
        base=base.reshape((2, *shape)),
        detail=detail.reshape((2, *shape)),
        fused_base=fused_base.reshape(shape),
        fused_detail=fused_detail.reshape(shape),
        level_weights=level_w.reshape((2, n_levels, *shape)),
        weights=weights.reshape((2, *shape)),
        winning_level=winning.reshape((2, *shape)),
        levels=opts.layers,
        params={
            **_params(opts, network, infrared, visible, pair, tile_used),
            "batch_size_used": batch_size,
            **({} if aligned is None else {"registration": aligned.params}),
        },
        timings=clock.timings(),
        valid=None if aligned is None else aligned.valid,
    )


def _params(
    opts: FusionOptions, network: FeatureNetwork, infrared, visible, pair, tile_used
) -> dict:
    params = opts.as_dict()
    params.update(
        method="Zhang, Li, Zhu & Du 2022, ResNet-152 infrared/visible fusion",
        package_version=__version__,
        torch_version=torch.__version__,
        weights_id=network.weights_id,
        pretrained=network.pretrained,
        device=str(network.device),
        dtype="float32" if opts.precision == "float32" else f"autocast-{opts.precision}",
        color=opts.color or ("ycbcr" if pair.chroma is not None else None),
        input_shapes={"infrared": list(np.shape(infrared)), "visible": list(np.shape(visible))},
        input_dtypes={
            "infrared": str(np.asarray(infrared).dtype),
            "visible": str(np.asarray(visible).dtype),
        },
        value_range=[list(r) for r in pair.value_ranges],
        tile_used=tile_used,
        tile_halo=DEFAULT_HALO if tile_used else None,
    )
    if not network.pretrained:
        params["warning"] = (
            f"seeded random weights ({network.weights_id}): not the pretrained network of the "
            "paper; for testing only"
        )
    return params


def fuse(
    infrared,
    visible,
    options: FusionOptions | None = None,
    *,
    progress: Callable[[Progress], Any] | None = None,
    registration=None,
    grid: str = "visible",
    crop: str | None = "overlap",
    **overrides: Any,
) -> FusionResult:
    """Fuse an infrared and a visible image (Zhang et al. 2022; METHOD.md).

    Parameters
    ----------
    infrared, visible : array_like
        ``(..., H, W)`` images of the same shape, each side at least 32 px; the visible image
        may be RGB ``(..., H, W, 3)``. Leading axes (time, z) are fused plane by plane.
    options : FusionOptions, optional
        All parameters at once; keyword arguments override single fields (see
        :class:`~napari_resfuse.FusionOptions` for each option and its default).
    progress : callable, optional
        Called with a :class:`Progress` after each stage.
    registration : None, "auto", Registration or path, optional
        For a pair that is not pixel-aligned (any two shapes): ``"auto"`` registers it with
        :func:`napari_resfuse.register.register` (on the first plane of a stack), a
        :class:`~napari_resfuse.register.Registration` or a registration file is applied as
        is (one matrix for every plane of a stack). The images are then resampled onto one
        grid (bilinear) before fusing; ``params["registration"]`` records how.
    grid : {"visible", "infrared"}
        With a registration: fuse on the visible grid (the infrared image is warped), or on
        the infrared grid (the visible image is warped; cheaper for large visible frames).
    crop : {"overlap", None}
        With a registration: crop both images to the largest axis-aligned rectangle inside
        their overlap (its top-left corner on the chosen grid is
        ``params["registration"]["crop_offset"]``), or keep the whole frame (None): outside
        the overlap the warped image then takes the other image's grey values (rescaled to
        its own value range), so the fused image there is the image that sees it, and
        ``result.valid`` marks the overlap.

    Returns
    -------
    FusionResult

    Raises
    ------
    ValueError
        Bad inputs (shapes, sizes, NaN/inf, constant images, dtypes) or options, including
        ``precision="float16"`` on the CPU and a ``kernel_size`` of twice the image's shorter
        side or more.
    NonFiniteResultError
        The features or the fused image are not finite (a ``ValueError`` naming the level and
        the cause: an overflow of the autocast precision, or weights that overflow float32).
    FileNotFoundError
        A weights file that does not exist, or ImageNet weights neither cached nor downloadable
        (:class:`~napari_resfuse.WeightsNotAvailableError`).

    Examples
    --------
    >>> from napari_resfuse import fuse, load_sample
    >>> ir, vis = load_sample()
    >>> result = fuse(ir, vis, weights="random")  # doctest: +SKIP
    >>> result.fused.shape == ir.shape  # doctest: +SKIP
    True
    """
    return run_with_progress(
        iter_fuse(
            infrared, visible, options, registration=registration, grid=grid, crop=crop, **overrides
        ),
        progress,
    )
