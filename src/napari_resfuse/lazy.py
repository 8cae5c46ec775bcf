"""Lazy fusion of large stacks: dask arrays whose blocks are fused on demand.

:func:`fuse_lazy` takes two stacks ``(..., H, W)`` (numpy, zarr, dask, or the readers of
:mod:`napari_resfuse.stacks`) and returns a :class:`LazyFusion` whose attributes ``fused``,
``base``, ``detail``, ``weights``, ... are dask arrays. Nothing is fused until a block is
computed; a block is a plane (or a few planes) of the stack with its whole height and width.
All the arrays of one block come from one engine call: within one ``compute`` they share a
task, and across calls (a viewer asking for ``fused[t]`` then ``weights[:, t]``) a small cache
of recent blocks answers without fusing again. The model is built once per process (the
engine's cache). :func:`save_lazy` computes a whole result block by block into a zarr store or
a TIFF file, with progress and cancel.

Nothing here imports napari, and torch is imported only when a block is fused.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .alignment import Alignment
from .method.inputs import is_color, spatial_shape
from .options import FusionOptions
from .stacks import as_dask, check_inputs, check_side, check_stack, stack_range

__all__ = [
    "OUTPUTS",
    "LazyFusion",
    "check_inputs",
    "fuse_lazy",
    "fuse_planes",
    "iter_save_lazy",
    "save_lazy",
    "stack_range",
]

#: The arrays of a :class:`LazyFusion`, named as the fields of
#: :class:`~napari_resfuse.FusionResult`.
OUTPUTS: tuple[str, ...] = (
    "fused",
    "fused_unclipped",
    "base",
    "detail",
    "fused_base",
    "fused_detail",
    "weights",
    "level_weights",
    "winning_level",
)
# Leading axes an output has before the stack's axes: (2,) for per-source maps, (2, L) for
# level weights.
_PER_SOURCE = ("base", "detail", "weights", "winning_level")


def _ramp_like(frame: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """A non-constant frame of ``frame``'s shape and dtype spanning ``value_range``."""
    lo, hi = value_range
    width = frame.shape[1]
    ramp = np.linspace(lo, hi, width)
    if frame.dtype.kind in "ui":
        info = np.iinfo(frame.dtype)
        ramp = np.clip(np.round(ramp), info.min, info.max)
    ramp = np.broadcast_to(ramp.reshape((1, width) + (1,) * (frame.ndim - 2)), frame.shape)
    return ramp.astype(frame.dtype)


def fuse_planes(
    infrared, visible, options: FusionOptions, alignment: Alignment | None = None
) -> dict[str, np.ndarray]:
    """:func:`~napari_resfuse.fuse` a block of planes with a fixed value range.

    The engine refuses a constant image (nothing to fuse); within a long stack a block can be
    constant (a black frame of a video) while the stack is not. With ``options.value_range``
    fixed, the scaling does not depend on the block's content and every plane is fused on its
    own, so such a block is fused with one extra non-constant plane appended, which is then
    dropped: the other planes' results do not depend on it.

    Parameters
    ----------
    infrared, visible : ndarray
        ``(..., H, W)`` blocks (the visible one may be RGB ``(..., H, W, 3)``).
    options : FusionOptions
        With ``value_range`` set (two ranges, infrared then visible).
    alignment : Alignment, optional
        A registration applied to every plane first (see :func:`fuse_lazy`): ``value_range``
        is then that of the unaligned stacks, as for :func:`~napari_resfuse.fuse`.

    Returns
    -------
    dict
        The arrays of :data:`OUTPUTS`, shaped as the fields of
        :class:`~napari_resfuse.FusionResult` for these inputs.
    """
    from .method.fuse import fuse  # torch is imported on first use, not with this module

    if options.value_range is None:
        raise ValueError("options.value_range must be fixed to fuse a block of a stack")
    ir = np.asarray(infrared)
    vis = np.asarray(visible)
    if alignment is not None:
        ir, vis = alignment.apply(ir, vis, options.value_range)
    spatial = spatial_shape(ir.shape)
    frame_ir = ir.shape[len(spatial) - 2 :]
    frame_vis = vis.shape[len(spatial) - 2 :]
    ir_planes = ir.reshape((-1, *frame_ir))
    vis_planes = vis.reshape((-1, *frame_vis))
    padded = ir_planes.min() == ir_planes.max() or vis_planes.min() == vis_planes.max()
    if padded:
        ir_planes = np.concatenate(
            [ir_planes, _ramp_like(ir_planes[0], options.value_range[0])[None]]
        )
        vis_planes = np.concatenate(
            [vis_planes, _ramp_like(vis_planes[0], options.value_range[1])[None]]
        )
    result = fuse(ir_planes, vis_planes, options)
    n_levels = len(result.levels)
    keep = slice(0, -1) if padded else slice(None)
    out = {}
    for name in OUTPUTS:
        array = getattr(result, name)
        if name in _PER_SOURCE:
            out[name] = array[:, keep].reshape((2, *spatial))
        elif name == "level_weights":
            out[name] = array[:, :, keep].reshape((2, n_levels, *spatial))
        else:
            out[name] = array[keep].reshape(spatial + array.shape[3:])
    return out


class _BlockEngine:
    """Fuses one block per call and remembers the last ``cache_blocks`` results.

    Concurrent requests for the same block (a viewer asking for two layers at once) wait for
    one engine call. ``calls`` counts engine calls made in this process.
    """

    def __init__(self, options: FusionOptions, cache_blocks: int, alignment=None):
        self.options = options
        self.cache_blocks = cache_blocks
        self.alignment = alignment
        self.calls = 0
        self.on_call: Callable[[tuple[int, ...]], Any] | None = None
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._cache: OrderedDict[tuple, dict] = OrderedDict()
        self._lock = threading.Lock()
        self._block_locks: dict[tuple, threading.Lock] = {}

    def __getstate__(self) -> dict:
        # Travels to Dask workers without its cache, locks or callback.
        return {
            "options": self.options,
            "cache_blocks": self.cache_blocks,
            "alignment": self.alignment,
        }

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.calls = 0
        self.on_call = None
        self._init_runtime()

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __call__(self, block: tuple[int, ...], infrared, visible) -> dict[str, np.ndarray]:
        with self._lock:
            if block in self._cache:
                self._cache.move_to_end(block)
                return self._cache[block]
            block_lock = self._block_locks.setdefault(block, threading.Lock())
        with block_lock:
            with self._lock:
                if block in self._cache:  # fused by another thread meanwhile
                    return self._cache[block]
            result = fuse_planes(infrared, visible, self.options, self.alignment)
            with self._lock:
                self.calls += 1
                if self.cache_blocks > 0:
                    self._cache[block] = result
                    while len(self._cache) > self.cache_blocks:
                        self._cache.popitem(last=False)
                self._block_locks.pop(block, None)
            if self.on_call is not None:
                self.on_call(block)
        return result


class LazyFusion:
    """The outputs of a lazy fusion run as dask arrays (made by :func:`fuse_lazy`).

    Attributes
    ----------
    fused, fused_unclipped, fused_base, fused_detail : dask.array.Array
        Shape ``S`` (``S + (3,)`` for ``fused`` of an RGB visible input), float32.
    base, detail, weights : dask.array.Array
        ``(2, *S)`` float32, infrared first.
    level_weights : dask.array.Array
        ``(2, n_levels, *S)`` float32.
    winning_level : dask.array.Array
        ``(2, *S)`` uint8.
    levels : tuple of str
        The levels of ``level_weights``' second axis.
    options : FusionOptions
        The options of every block, ``value_range`` fixed for the whole stack.
    shape : tuple of int
        ``S``, the stacks' spatial shape ``(..., H, W)``.
    input_dtypes : (numpy.dtype, numpy.dtype)
        The inputs' dtypes (for writing in their bit depth, see :func:`save_lazy`).
    planes_per_block : int
        Planes fused per engine call (along the last leading axis).
    alignment : Alignment or None
        With ``registration``: the registration, grid and crop applied to every plane.
    valid : ndarray or None
        With a registration and ``crop=None``: ``(H, W)`` bool, where both images see the
        scene (as :attr:`FusionResult.valid <napari_resfuse.FusionResult>`); otherwise None.
    """

    def __init__(self, arrays: dict, engine: _BlockEngine, shape, input_dtypes, planes):
        for name, array in arrays.items():
            setattr(self, name, array)
        self._engine = engine
        self.options = engine.options
        self.levels = engine.options.layers
        self.shape = tuple(shape)
        self.input_dtypes = tuple(input_dtypes)
        self.planes_per_block = planes
        self.alignment = engine.alignment
        self.valid = None if self.alignment is None else self.alignment.valid

    @property
    def calls(self) -> int:
        """Engine calls (blocks fused) made so far in this process; cache hits do not count."""
        return self._engine.calls

    @property
    def on_call(self) -> Callable[[tuple[int, ...]], Any] | None:
        """Called with the block index after each engine call (in the computing thread)."""
        return self._engine.on_call

    @on_call.setter
    def on_call(self, callback: Callable[[tuple[int, ...]], Any] | None) -> None:
        self._engine.on_call = callback

    @property
    def numblocks(self) -> tuple[int, ...]:
        """Blocks along each leading axis of the stack."""
        return self.fused.numblocks[: len(self.shape) - 2]

    @property
    def params(self) -> dict[str, Any]:
        """The options (value range included) and the layout, as plain values."""
        return {
            **self.options.as_dict(),
            "shape": list(self.shape),
            "planes_per_block": self.planes_per_block,
            "input_dtypes": [str(d) for d in self.input_dtypes],
            **({} if self.alignment is None else {"registration": self.alignment.params}),
        }

    def clear_cache(self) -> None:
        """Forget the cached blocks (the next request fuses again)."""
        self._engine.clear()

    def __getitem__(self, name: str):
        if name not in OUTPUTS:
            raise KeyError(f"{name!r} is not an output; outputs are {OUTPUTS}")
        return getattr(self, name)

    def __repr__(self) -> str:
        return (
            f"LazyFusion(shape={self.shape}, blocks={self.numblocks}, "
            f"levels={self.levels}, calls={self.calls})"
        )


def fuse_lazy(
    infrared,
    visible,
    options: FusionOptions | None = None,
    *,
    registration=None,
    grid: str = "visible",
    crop: str | None = "overlap",
    planes_per_block: int = 1,
    cache_blocks: int = 8,
    **overrides: Any,
) -> LazyFusion:
    """Fuse two stacks lazily: dask arrays whose blocks are fused when computed.

    Parameters
    ----------
    infrared, visible : array_like
        ``(..., H, W)`` stacks of the same spatial shape (the visible one may be RGB): numpy or
        dask arrays, zarr arrays, or readers from :func:`napari_resfuse.stacks.stack_reader`.
        A dask input is rechunked to the block layout (one block per ``planes_per_block``
        planes along the last leading axis, whole frames). With a ``registration`` the frames
        may differ in size; the stack axes must match.
    options : FusionOptions, optional
        As for :func:`~napari_resfuse.fuse`; keyword arguments override single fields.
    registration : None, "auto", Registration or path, optional
        One registration for the whole stack (a fixed rig), applied to every plane as
        :func:`~napari_resfuse.fuse` applies it to a pair (``"auto"``: registered once, on the
        first planes). A registration for other frame shapes is refused here, before anything
        is read. ``params["registration"]`` records it; ``valid`` marks the overlap.
    grid, crop :
        As for :func:`~napari_resfuse.fuse`, with a registration.
    planes_per_block : int
        Planes per block, i.e. per engine call (1 for viewing: a slider move fuses one plane;
        more for throughput when computing everything).
    cache_blocks : int
        Results of this many recently fused blocks are kept, so that the other outputs of a
        viewed plane come without fusing again (0: no cache).

    Returns
    -------
    LazyFusion
        ``fused``, ``base``, ``detail``, ``weights``, ... as dask arrays.

    Notes
    -----
    Every block is fused with the same ``value_range``. When it is not given, it is the one
    the engine would use for the stacks as whole arrays: ``(0, 255)`` for ``uint8`` and the
    stack's min and max otherwise, which reads the whole stack once, here (pass
    ``value_range``, e.g. a viewer's contrast limits, to avoid that). So a block's values equal
    those of :func:`~napari_resfuse.fuse` on the whole stack, up to the floating-point effects
    of different batch sizes (about 1e-6).

    A constant block (a black frame) is fused, with that fixed range (see :func:`fuse_planes`).

    Examples
    --------
    >>> lazy = fuse_lazy(ir_stack, vis_stack, weights="random")  # doctest: +SKIP
    >>> frame = lazy.fused[10].compute()  # fuses plane 10 only  # doctest: +SKIP
    """
    for name, value in (("planes_per_block", planes_per_block), ("cache_blocks", cache_blocks)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if planes_per_block < 1:
        raise ValueError(f"planes_per_block must be at least 1, got {planes_per_block}")
    opts = FusionOptions.coerce(options, **overrides)

    shapes = [tuple(np.shape(a)) for a in (infrared, visible)]
    for name, shape in zip(("infrared", "visible"), shapes, strict=True):
        if len(shape) < 2:
            raise ValueError(f"{name} must have at least 2 dimensions, got shape {shape}")
    spatial = spatial_shape(shapes[0])
    n_lead = len(spatial) - 2
    ir = as_dask(infrared, "infrared", n_lead, planes_per_block)
    vis = as_dask(visible, "visible", n_lead, planes_per_block)
    alignment = None
    if registration is None:
        spatial = check_inputs(ir, vis)
    else:
        for name, array in (("infrared", ir), ("visible", vis)):
            check_stack(name, array)
        alignment = Alignment.for_stacks(registration, ir, vis, grid=grid, crop=crop)
        spatial = (*spatial_shape(ir.shape)[:-2], *alignment.frame_shape)
        check_side(spatial, "aligned images")
    if opts.value_range is None:  # of the unaligned stacks, as fuse() scales a registered pair
        opts = opts.replace(value_range=(stack_range("infrared", ir), stack_range("visible", vis)))
    engine = _BlockEngine(opts, cache_blocks, alignment)
    arrays = _graph(engine, ir, vis, spatial)
    return LazyFusion(arrays, engine, spatial, (ir.dtype, vis.dtype), planes_per_block)


def _graph(engine: _BlockEngine, ir, vis, spatial: tuple[int, ...]) -> dict:
    """One delayed engine call per block; each output assembled from its picks of them."""
    import dask
    import dask.array as da
    from dask.base import tokenize

    opts = engine.options
    n_lead = len(spatial) - 2
    lead_chunks = ir.chunks[:n_lead]
    ir_tail = (0,) * (ir.ndim - n_lead)
    vis_tail = (0,) * (vis.ndim - n_lead)
    aligned = None if engine.alignment is None else engine.alignment.params
    token = tokenize(ir.name, vis.name, opts, ir.chunks, repr(aligned))
    run = dask.delayed(engine, pure=True)
    results = {
        idx: run(
            idx,
            ir.blocks[idx + ir_tail],
            vis.blocks[idx + vis_tail],
            dask_key_name=f"resfuse-block-{token}-{'-'.join(map(str, idx))}",
        )
        for idx in np.ndindex(*(len(c) for c in lead_chunks))
    }
    rgb_out = is_color(vis.shape) and (opts.color or "ycbcr") == "ycbcr"
    n_levels = len(opts.layers)
    arrays = {}
    for name in OUTPUTS:
        prefix = (2,) if name in _PER_SOURCE else (2, n_levels) if name == "level_weights" else ()
        suffix = (3,) if name in ("fused", "fused_unclipped") and rgb_out else ()
        dtype = np.uint8 if name == "winning_level" else np.float32
        blocks = {
            idx: da.from_delayed(
                result[name],
                shape=prefix
                + tuple(c[i] for c, i in zip(lead_chunks, idx, strict=True))
                + tuple(spatial[-2:])
                + suffix,
                dtype=dtype,
                name=f"resfuse-{name.replace('_', '-')}-{token}-{'-'.join(map(str, idx))}",
            )
            for idx, result in results.items()
        }
        arrays[name] = _assemble(blocks, len(prefix), ())
    return arrays


def _assemble(blocks: dict, axis: int, done: tuple[int, ...]):
    """Concatenate the blocks ``{lead index: array}`` along the lead axes from ``axis`` on."""
    import dask.array as da

    if len(done) == len(next(iter(blocks))):
        return blocks[done]
    count = 1 + max(idx[len(done)] for idx in blocks)
    parts = [_assemble(blocks, axis + 1, (*done, i)) for i in range(count)]
    return parts[0] if count == 1 else da.concatenate(parts, axis=axis)


def iter_save_lazy(
    lazy: LazyFusion,
    path: str | os.PathLike,
    *,
    outputs: Sequence[str] = ("fused",),
    dtype=None,
    overwrite: bool = False,
) -> Generator[tuple[int, int], None, Path]:
    """:func:`save_lazy` as a generator: yields ``(blocks_done, blocks_total)`` before the first
    block and after each one, and returns the path.

    Closing the generator (or not resuming it) stops the run between blocks and removes the
    partial output; this is the shape a napari ``thread_worker`` wants (its ``quit()`` closes
    the generator; each yield is a progress event). Arguments are checked when this is called.
    """
    path = Path(path)
    outputs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
    unknown = [name for name in outputs if name not in OUTPUTS]
    if not outputs or unknown:
        raise ValueError(f"outputs must be a non-empty subset of {OUTPUTS}, got {outputs!r}")
    tiff = path.suffix.lower() in (".tif", ".tiff")
    if tiff and len(outputs) != 1:
        raise ValueError(
            f"a TIFF file holds one output, got {len(outputs)} ({', '.join(outputs)}): write a "
            "zarr store for several"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    out_dtype = None if dtype is None else np.dtype(dtype)
    return _save_blocks(lazy, path, outputs, out_dtype, tiff)


def _save_blocks(lazy, path: Path, outputs, out_dtype, tiff: bool):
    from .io import from_unit_range
    from .stacks import iter_write_blocks

    def convert(name: str, block: np.ndarray) -> np.ndarray:
        if name == "fused" and out_dtype is not None:
            return from_unit_range(block, out_dtype)
        return block

    arrays = {name: getattr(lazy, name) for name in outputs}
    dtypes = {
        name: (out_dtype if name == "fused" and out_dtype is not None else arrays[name].dtype)
        for name in outputs
    }
    prefix = {name: _prefix_ndim(name) for name in outputs}
    return (
        yield from iter_write_blocks(
            arrays, path, prefix, len(lazy.shape) - 2, dtypes, convert, lazy.params, tiff
        )
    )


def save_lazy(
    lazy: LazyFusion,
    path: str | os.PathLike,
    *,
    outputs: Sequence[str] = ("fused",),
    dtype=None,
    progress: Callable[[int, int], Any] | None = None,
    cancel: Callable[[], bool] | None = None,
    overwrite: bool = False,
) -> Path:
    """Compute a lazy result block by block and write it to a zarr store or a TIFF file.

    Parameters
    ----------
    lazy : LazyFusion
        From :func:`fuse_lazy`.
    path : str or path-like
        ``*.tif``/``*.tiff``: a multi-page TIFF of one output (held in memory until written,
        so for small results); anything else: a zarr store (a group with one array per output,
        chunked by block, and the run's parameters in its attributes ``"napari_resfuse"``).
    outputs : sequence of str
        Names from :data:`OUTPUTS`.
    dtype : numpy dtype, optional
        Type of the written ``fused`` array: ``None`` keeps float32 in ``[0, 1]``; an integer
        type maps ``[0, 1]`` to its full range as ``resfuse fuse`` does
        (:func:`napari_resfuse.io.from_unit_range`; pass
        ``io.output_dtype(*lazy.input_dtypes)`` for the inputs' bit depth). Other outputs stay
        float32 (``winning_level`` uint8).
    progress : callable, optional
        Called as ``progress(blocks_done, blocks_total)`` before the first block and after each
        block (in the calling thread).
    cancel : callable, optional
        Called before each block; when it returns True, the partial output is removed and
        :class:`~napari_resfuse.FusionCancelled` is raised.
    overwrite : bool
        Replace an existing ``path``; otherwise an existing path is an error.

    Returns
    -------
    pathlib.Path
        ``path``. It appears only when complete: the data go to a temporary sibling that is
        renamed at the end, so a crash or a cancel never leaves a partial output at ``path``.

    Raises
    ------
    FusionCancelled
        ``cancel()`` returned True.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    from .method.fuse import FusionCancelled, run_with_progress

    def on_progress(event: tuple[int, int]) -> None:
        done, total = event
        if progress is not None:
            progress(done, total)
        if done < total and cancel is not None and cancel():
            raise FusionCancelled(f"saving to {str(path)!r} was cancelled")

    # A cancel or an error closes the generator, which removes the partial output.
    runner = iter_save_lazy(lazy, path, outputs=outputs, dtype=dtype, overwrite=overwrite)
    return run_with_progress(runner, on_progress)


def _prefix_ndim(name: str) -> int:
    return 1 if name in _PER_SOURCE else 2 if name == "level_weights" else 0
