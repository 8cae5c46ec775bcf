"""From napari layers to a fusion run, and from its result back to layers.

Data flows one way: two Image layers -> :class:`FusionJob` (arrays, value ranges, options) ->
:func:`napari_resfuse.iter_fuse` -> :class:`~napari_resfuse.FusionResult` ->
:func:`result_layer_data` (napari ``LayerDataTuple`` s: data plus name, transform, colormap and
metadata) -> :func:`add_or_update_layers`. The widget runs the middle step in a thread worker;
:func:`fuse_layers` runs all of them synchronously (or hands lazy inputs to
:func:`~napari_resfuse._napari.lazy_layers.fuse_layers_lazy`). The output layers themselves
(names, colormaps, marker) are described in :mod:`~napari_resfuse._napari._layer_specs`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..method.fuse import FusionResult, fuse
from ..options import FusionOptions
from ._inputs import fusion_value_range, resolve_layer, resolve_pair
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

__all__ = [
    "DEFAULT_OUTPUTS",
    "MARKER",
    "OUTPUTS",
    "FusionJob",
    "add_or_update_layers",
    "fuse_layers",
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
        The input layers (never modified). The outputs take the infrared layer's transform.
    infrared, visible : ndarray
        Their data, as handed to the engine.
    options : FusionOptions
        The run's options, with ``value_range`` taken from the layers (see :func:`prepare_job`).
    names : (str, str)
        The layers' names when the job was made; the outputs are named from them.
    registration : Registration or None
        When the layers' world transforms differ (an aligned pair of different grids): how
        they overlay; ``infrared`` is then resampled onto the visible layer's grid and the
        outputs take the visible layer's transform.
    """

    infrared_layer: Image
    visible_layer: Image
    infrared: np.ndarray
    visible: np.ndarray
    options: FusionOptions
    names: tuple[str, str]
    registration: Any = None  # set when the layers' transforms differ: both on the visible grid


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

    Raises
    ------
    ValueError
        A layer that is missing, not an Image layer, multiscale, has unusable contrast limits,
        or whose shape differs from the other's (the message names both layers).
    """
    ir_layer, vis_layer, opts = resolve_pair(viewer, infrared, visible, options, overrides)
    ir_data = np.asarray(computable(ir_layer.data))
    vis_data = np.asarray(computable(vis_layer.data))
    if opts.value_range is None and not (ir_data.dtype == vis_data.dtype == np.uint8):
        ranges = (
            fusion_value_range(ir_layer, ir_data.dtype, "infrared"),
            fusion_value_range(vis_layer, vis_data.dtype, "visible"),
        )
        opts = opts.replace(value_range=ranges)
    registration = _layer_registration(ir_layer, vis_layer)
    if registration is not None:  # the layers' transforms overlay them: use the visible grid
        from ..register._apply import align_pair

        aligned = align_pair(
            ir_data, vis_data, registration, crop=None, value_range=opts.value_range
        )
        ir_data, vis_data = aligned.infrared, aligned.visible
        opts = opts.replace(value_range=aligned.value_range)
    return FusionJob(
        infrared_layer=ir_layer,
        visible_layer=vis_layer,
        infrared=ir_data,
        visible=vis_data,
        options=opts,
        names=(ir_layer.name, vis_layer.name),
        registration=registration,
    )


def _layer_registration(ir_layer, vis_layer):
    from ._alignment import layer_registration

    return layer_registration(ir_layer, vis_layer)


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
        Where the inputs came from: outputs are named from ``job.names`` and take the infrared
        layer's scale, translate, rotate, shear, affine, units and axis labels.
    outputs : iterable of str
        Which of :data:`OUTPUTS` to return; ``"fused"`` is always returned.

    Returns
    -------
    list of (ndarray, dict, str)
        In the order fused, base, detail, weights, winning level; infrared before visible.
        Every layer's ``metadata`` holds ``params`` (the run's ``result.params``), ``timings``
        and a ``napari_resfuse`` entry naming the output and its inputs.
    """
    grid_layer = job.infrared_layer if job.registration is None else job.visible_layer
    return output_layer_data(result, grid_layer, job.names, outputs)


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
    result = fuse(job.infrared, job.visible, job.options)
    return add_or_update_layers(viewer, result_layer_data(result, job, kinds))
