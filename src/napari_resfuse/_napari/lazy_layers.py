"""Lazy output layers: fusing dask/zarr-backed (or very large) stacks one viewed plane at a time.

When an input layer's data is not an in-memory numpy array (a dask array, a zarr array, a
stack reader) or is larger than :data:`IN_MEMORY_LIMIT`, the outputs are added as layers backed
by the dask arrays of :func:`napari_resfuse.lazy.fuse_lazy`: moving a slider fuses only
the plane shown (one engine call per plane; the other outputs of that plane come from a small
cache), and nothing is fused for planes never shown. The widget's "Compute all and save" runs
:func:`napari_resfuse.lazy.iter_save_lazy` in its worker, with progress and cancel;
:func:`save_worker` is the same as a napari thread worker, for scripts.

The layers have the same names, transforms, colormaps and plugin marker as the in-memory ones
(both are described by :mod:`napari_resfuse._napari._layer_specs`; re-running on the same
inputs updates them in place);
their marker also holds ``"lazy": True`` and the :class:`~napari_resfuse.lazy.LazyFusion`
(:func:`lazy_of`). Contrast limits are fixed (``[0, 1]``; detail ``[-0.5, 0.5]``) so that napari
never reads the whole data to guess them.

Nothing blocks the viewer: in a Qt application (the viewer, the widgets) each layer's data is
a :class:`~napari_resfuse._napari.background.BackgroundPlanes` around its dask array, so a
slider move returns at once, showing the layer's last plane (marked as loading) until the new
one has been fused in a background thread; planes passed over while another was being fused are
never fused. ``layer.data.array`` is the dask array. Without a Qt application (a
``ViewerModel`` in a script) the layers hold the dask arrays themselves and slicing computes
in the calling thread (``background=False`` asks for that in a Qt application too; napari's
own asynchronous slicing setting then moves the wait to its slicing thread).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..lazy import LazyFusion, fuse_lazy, iter_save_lazy
from ..options import FusionOptions
from ._inputs import fusion_value_range, grid_layer, resolve_pair
from ._layer_specs import (
    DEFAULT_OUTPUTS,
    DETAIL_LIMITS,
    MARKER,
    LayerData,
    add_or_update_layers,
    find_output,
    output_layer_data,
)
from .background import BackgroundPlanes, computable, qt_app_running

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Image, Layer

__all__ = [
    "DETAIL_LIMITS",
    "IN_MEMORY_LIMIT",
    "fuse_layers_lazy",
    "is_lazy_data",
    "lazy_layer_data",
    "lazy_of",
    "save_worker",
]

#: Inputs larger than this (bytes) are fused lazily even when they are numpy arrays.
IN_MEMORY_LIMIT = 1 << 30


def is_lazy_data(data: Any, limit: int = IN_MEMORY_LIMIT) -> bool:
    """Whether a layer's data should be fused lazily: anything but a numpy array (dask, zarr,
    a stack reader), or a numpy array of more than ``limit`` bytes."""
    if isinstance(data, np.ndarray):
        return data.nbytes > limit
    return hasattr(data, "shape") and hasattr(data, "dtype")


def lazy_of(layer: Layer) -> LazyFusion | None:
    """The lazy fusion behind an output layer added by :func:`fuse_layers_lazy` (else None)."""
    marker = layer.metadata.get(MARKER)
    if isinstance(marker, dict) and marker.get("lazy"):
        return marker.get("lazy_fusion")
    return None


def lazy_layer_data(
    lazy: LazyFusion,
    grid_layer: Image,
    names: tuple[str, str],
    outputs: Iterable[str] = DEFAULT_OUTPUTS,
) -> list[LayerData]:
    """The output layers of a lazy run as napari ``LayerDataTuple`` s with dask data.

    Same names, order, transforms and colormaps as
    :func:`napari_resfuse._napari.layers.result_layer_data` (both come from
    :func:`~napari_resfuse._napari._layer_specs.output_layer_data`); each layer is created
    hidden (``visible=False``) so that napari does not slice it before it is in the viewer, and
    :func:`fuse_layers_lazy` shows it once added. Detail layers have the fixed contrast limits
    :data:`DETAIL_LIMITS`. ``grid_layer`` is the input layer whose grid the planes lie on (as
    for :func:`~napari_resfuse._napari._layer_specs.output_layer_data`).
    """
    return output_layer_data(lazy, grid_layer, names, outputs)


def fuse_layers_lazy(
    viewer: napari.Viewer,
    infrared: Image | str,
    visible: Image | str,
    *,
    outputs: Iterable[str] = DEFAULT_OUTPUTS,
    options: FusionOptions | None = None,
    planes_per_block: int = 1,
    cache_blocks: int = 8,
    background: bool | None = None,
    **overrides: Any,
) -> list[Layer]:
    """Add (or update) lazy output layers for two stack layers; nothing is fused until shown.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    infrared, visible : napari.layers.Image or str
        The input layers or their names; their data are never loaded whole.
    outputs : iterable of str
        As for :func:`napari_resfuse.fuse_layers`.
    options : FusionOptions, optional
        The run's options; keywords override single fields.
    planes_per_block, cache_blocks : int
        See :func:`napari_resfuse.lazy.fuse_lazy`; ``cache_blocks`` is also the number of
        computed planes each layer keeps in background mode.
    background : bool, optional
        Fuse the planes napari shows in a background thread, so that slicing never waits
        (layer data are :class:`~napari_resfuse._napari.background.BackgroundPlanes`), or in
        the slicing thread (data are the dask arrays). Default: in the background when a Qt
        application is running (it refreshes the layers), else not.

    Returns
    -------
    list of napari.layers.Layer
        The output layers; :func:`lazy_of` gives their :class:`~napari_resfuse.lazy.LazyFusion`
        (its ``calls`` counts planes fused so far).

    Notes
    -----
    As for in-memory layers, ``uint8`` data are divided by 255 and any other dtype is scaled by
    the layer's contrast limits, for every plane alike; and layers that differ in shape or
    world transform are fused on the visible layer's grid, every infrared plane resampled by
    the registration their transforms describe (the rule of
    :func:`~napari_resfuse._napari.layers.prepare_job`).
    """
    if background is None:
        background = qt_app_running()
    ir_layer, vis_layer, opts, registration = resolve_pair(
        viewer, infrared, visible, options, overrides
    )
    if opts.value_range is None:
        ranges = (
            fusion_value_range(ir_layer, ir_layer.data.dtype, "infrared"),
            fusion_value_range(vis_layer, vis_layer.data.dtype, "visible"),
        )
        opts = opts.replace(value_range=ranges)
    # Layers that differ in shape or transform: every plane resampled onto the visible grid,
    # as prepare_job does for in-memory layers (one registration for the whole stack).
    aligned = {} if registration is None else {"registration": registration, "crop": None}
    lazy = fuse_lazy(
        computable(ir_layer.data),
        computable(vis_layer.data),
        opts,
        planes_per_block=planes_per_block,
        cache_blocks=cache_blocks,
        **aligned,
    )
    grid = grid_layer(ir_layer, vis_layer, registration)
    data = lazy_layer_data(lazy, grid, (ir_layer.name, vis_layer.name), outputs)
    earlier = [find_output(viewer, kwargs["metadata"][MARKER]["key"]) for _, kwargs, _ in data]
    previous = [layer.data for layer in earlier if layer is not None]
    if background:
        keep = max(cache_blocks, 1)
        data = [
            (BackgroundPlanes(array, keep=keep, slice_ndim=array.ndim - bool(kw.get("rgb"))), kw, k)
            for array, kw, k in data
        ]
        viewer.layers.events.removed.connect(_cancel_removed)
    layers = add_or_update_layers(viewer, data)
    for old in previous:  # a re-run: the earlier run's planes are no longer wanted
        if isinstance(old, BackgroundPlanes):
            old.close()
    for layer in layers:
        if isinstance(layer.data, BackgroundPlanes):
            layer.data.attach(layer)
        layer.visible = True  # added hidden: now sliced once, at the viewer's current point
    return layers


def _cancel_removed(event) -> None:
    """A layer left the viewer: drop its queued plane (nothing is fused for it any more)."""
    data = getattr(event.value, "data", None)
    if isinstance(data, BackgroundPlanes):
        data.cancel_pending()


def save_worker(
    lazy: LazyFusion,
    path: str | Path,
    *,
    outputs: Sequence[str] = ("fused",),
    dtype=None,
    overwrite: bool = False,
):
    """A napari thread worker that computes every plane and writes them (zarr, or TIFF).

    It yields ``(blocks_done, blocks_total)`` (connect ``worker.yielded`` to a progress bar),
    returns the path (``worker.returned``), and ``worker.quit()`` cancels between blocks and
    removes the partial output. Start it with ``worker.start()``. Arguments are checked here,
    in the calling thread (``FileExistsError``, ``ValueError``).
    """
    from napari.qt.threading import GeneratorWorker

    runner = iter_save_lazy(lazy, path, outputs=outputs, dtype=dtype, overwrite=overwrite)

    def run():
        return (yield from runner)

    worker = GeneratorWorker(run)
    # quit() stops the worker between yields without closing the generator: close it, which
    # removes the partial output (the generator is not running once ``aborted`` is emitted).
    worker.aborted.connect(runner.close)
    return worker
