"""From napari layers to a fusion run, and from its result back to layers.

Data flows one way: two Image layers -> :class:`FusionJob` (arrays, value ranges, options, how
the layers overlay) -> :func:`fusion_steps` (:func:`napari_resfuse.iter_fuse`) ->
:class:`~napari_resfuse.FusionResult` ->
:func:`result_layer_data` (napari ``LayerDataTuple`` s: data plus name, transform, colormap and
metadata) -> :func:`add_or_update_layers`. The widget runs the middle step in a thread worker;
:func:`fuse_layers` runs all of them synchronously (or hands lazy inputs to
:func:`~napari_resfuse._napari.lazy_layers.fuse_layers_lazy`). The output layers themselves
(names, colormaps, marker) are described in :mod:`~napari_resfuse._napari._layer_specs`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..method.fuse import FusionResult, Progress, iter_fuse, run_with_progress
from ..options import FusionOptions
from ._inputs import fusion_value_range, grid_layer, resolve_layer, resolve_pair
from ._layer_specs import (
    DEFAULT_OUTPUTS,
    MARKER,
    OUTPUTS,
    add_or_update_layers,
    check_outputs,
    output_layer_data,
    output_names,
)
from .background import computable
from .lazy_layers import fuse_layers_lazy, is_lazy_data

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Image, Layer

    from ..register import Registration

__all__ = [
    "DEFAULT_OUTPUTS",
    "MARKER",
    "OUTPUTS",
    "FusionJob",
    "add_or_update_layers",
    "fuse_layers",
    "fusion_steps",
    "output_names",
    "prepare_job",
    "result_layer_data",
]


@dataclass(frozen=True)
class FusionJob:
    """Everything a run needs, read from two layers in the main thread.

    Attributes
    ----------
    infrared_layer, visible_layer : napari.layers.Image
        The input layers (never modified).
    infrared, visible : ndarray
        Their data, as handed to the engine.
    options : FusionOptions
        The run's options, with ``value_range`` taken from the layers (see :func:`prepare_job`).
    names : (str, str)
        The layers' names when the job was made; the outputs are named from them.
    registration : Registration or None
        How the layers overlay when they differ in shape or world transform
        (:func:`~napari_resfuse._napari._alignment.layer_registration`): the engine then
        resamples ``infrared`` onto the visible layer's grid (``crop=None``: the whole visible
        frame, ``result.valid`` marking the overlap). None: pixel for pixel.
    """

    infrared_layer: Image
    visible_layer: Image
    infrared: np.ndarray
    visible: np.ndarray
    options: FusionOptions
    names: tuple[str, str]
    registration: Registration | None = None

    @property
    def grid_layer(self) -> Image:
        """The layer whose data grid the outputs lie on, and whose transform they take
        (:func:`~napari_resfuse._napari._inputs.grid_layer`)."""
        return grid_layer(self.infrared_layer, self.visible_layer, self.registration)


def fusion_steps(job: FusionJob) -> Generator[Progress, None, FusionResult]:
    """The engine's run for ``job`` (a generator of its stages, returning the result): the
    one place a job meets the engine, for :func:`fuse_layers` and the fusion widget's worker.
    With ``job.registration`` this is ``iter_fuse(..., registration=job.registration,
    crop=None)``, exactly what a script passing that registration to
    :func:`napari_resfuse.fuse` gets."""
    if job.registration is None:
        return iter_fuse(job.infrared, job.visible, job.options)
    return iter_fuse(
        job.infrared, job.visible, job.options, registration=job.registration, crop=None
    )


def prepare_job(
    infrared: Image | str,
    visible: Image | str,
    options: FusionOptions | None = None,
    *,
    viewer: napari.Viewer | None = None,
    **overrides: Any,
) -> FusionJob:
    """Read two Image layers into a :class:`FusionJob`.

    Parameters
    ----------
    infrared, visible : napari.layers.Image or str
        The layers, or their names in ``viewer``.
    options : FusionOptions, optional
        The run's options; keyword arguments override single fields.
    viewer : napari.Viewer, optional
        Needed only when layers are given by name.

    Returns
    -------
    FusionJob

    Notes
    -----
    Unless ``value_range`` is given, each layer is scaled to ``[0, 1]`` as METHOD.md says for
    napari: ``uint8`` data is divided by 255, any other dtype is mapped by the layer's contrast
    limits, ``(x - low) / (high - low)``.

    Layers of the same shape and world transform are fused pixel for pixel. Layers that differ
    in shape or transform, whose transforms (scale, translate, rotate, shear, affine) say how
    they overlay, are fused on the visible layer's grid: ``job.registration`` holds how
    (:func:`~napari_resfuse._napari._alignment.layer_registration`).

    Raises
    ------
    ValueError
        A layer that is missing, not an Image layer, multiscale or has unusable contrast
        limits; layers of different shapes under the same transform, or whose transforms do
        not overlay them (the message names both layers).
    """
    ir_layer, vis_layer, opts, registration = resolve_pair(
        viewer, infrared, visible, options, overrides
    )
    ir_data = np.asarray(computable(ir_layer.data))
    vis_data = np.asarray(computable(vis_layer.data))
    if opts.value_range is None and not (ir_data.dtype == vis_data.dtype == np.uint8):
        ranges = (
            fusion_value_range(ir_layer, ir_data.dtype, "infrared"),
            fusion_value_range(vis_layer, vis_data.dtype, "visible"),
        )
        opts = opts.replace(value_range=ranges)
    return FusionJob(
        infrared_layer=ir_layer,
        visible_layer=vis_layer,
        infrared=ir_data,
        visible=vis_data,
        options=opts,
        names=(ir_layer.name, vis_layer.name),
        registration=registration,
    )


def result_layer_data(
    result: FusionResult,
    job: FusionJob,
    outputs: Iterable[str] = DEFAULT_OUTPUTS,
) -> list[tuple[np.ndarray, dict[str, Any], str]]:
    """The output layers of a run as napari ``LayerDataTuple`` s ``(data, kwargs, type)``.

    Parameters
    ----------
    result : FusionResult
        What :func:`napari_resfuse.fuse` returned for ``job``.
    job : FusionJob
        Where the inputs came from: outputs are named from ``job.names`` and take the scale,
        translate, rotate, shear, affine, units and axis labels of ``job.grid_layer`` (the
        visible layer when the infrared one was resampled onto its grid, else the infrared
        layer).
    outputs : iterable of str
        Which of :data:`OUTPUTS` to return; ``"fused"`` is always returned.

    Returns
    -------
    list of (ndarray, dict, str)
        In the order fused, base, detail, weights, winning level; infrared before visible.
        Every layer's ``metadata`` holds ``params`` (the run's ``result.params``), ``timings``
        and a ``napari_resfuse`` entry naming the output and its inputs.
    """
    return output_layer_data(result, job.grid_layer, job.names, outputs)


def fuse_layers(
    viewer: napari.Viewer,
    infrared: Image | str,
    visible: Image | str,
    *,
    outputs: Iterable[str] = DEFAULT_OUTPUTS,
    options: FusionOptions | None = None,
    **overrides: Any,
) -> list[Layer]:
    """Fuse two Image layers and add the outputs to the viewer, synchronously.

    The same run and the same output layers as the "Fuse infrared + visible" widget, for scripts
    and notebooks.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer that holds (or gets) the layers.
    infrared, visible : napari.layers.Image or str
        The input layers or their names. ``visible`` may be RGB (fused on its luminance, giving
        an RGB fused layer); stacks are fused plane by plane. They are never modified. Stacks
        backed by dask/zarr or larger than ``lazy_layers.IN_MEMORY_LIMIT`` give lazy layers
        (:func:`~napari_resfuse._napari.lazy_layers.fuse_layers_lazy`): planes are fused when
        shown.
    outputs : iterable of str
        Which of :data:`OUTPUTS` to add (``"fused"`` always is); default
        :data:`DEFAULT_OUTPUTS`.
    options : FusionOptions, optional
        The run's options; any other keyword (``weights``, ``seed``, ``device``,
        ``kernel_size``, ``base_weights``, ``layers``, ``norm``, ``value_range``, ...) overrides
        a single field of :class:`~napari_resfuse.FusionOptions`.

    Returns
    -------
    list of napari.layers.Layer
        The added or updated layers (see :func:`result_layer_data` for names and order).

    Raises
    ------
    ValueError
        Bad layers (see :func:`prepare_job`), bad options or inputs the engine rejects.
    FileNotFoundError
        A missing weights file, or ImageNet weights neither cached nor downloadable.

    Examples
    --------
    >>> import napari  # doctest: +SKIP
    >>> from napari_resfuse import fuse_layers, load_sample
    >>> viewer = napari.Viewer()  # doctest: +SKIP
    >>> ir, vis = load_sample()
    >>> viewer.add_image(ir, name="ir"); viewer.add_image(vis, name="vis")  # doctest: +SKIP
    >>> fuse_layers(viewer, "ir", "vis", weights="random")  # doctest: +SKIP
    """
    kinds = check_outputs(outputs)
    ir_layer = resolve_layer(viewer, infrared, "infrared")
    vis_layer = resolve_layer(viewer, visible, "visible")
    if is_lazy_data(ir_layer.data) or is_lazy_data(vis_layer.data):
        # dask/zarr-backed or very large stacks: lazy layers, fused plane by plane when shown
        return fuse_layers_lazy(
            viewer, ir_layer, vis_layer, outputs=kinds, options=options, **overrides
        )
    job = prepare_job(ir_layer, vis_layer, options, viewer=viewer, **overrides)
    result = run_with_progress(fusion_steps(job), None)
    return add_or_update_layers(viewer, result_layer_data(result, job, kinds))
