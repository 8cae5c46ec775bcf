"""From napari layers to a fusion run, and from its result back to layers.

Data flows one way: two Image layers -> :class:`FusionJob` (arrays, value ranges, options) ->
:func:`napari_resfuse.iter_fuse` -> :class:`~napari_resfuse.FusionResult` ->
:func:`result_layer_data` (napari ``LayerDataTuple`` s: data plus name, transform, colormap and
metadata) -> :func:`add_or_update_layers`. The widget runs the middle step in a thread worker;
:func:`fuse_layers` runs all of them synchronously.

Output layers (``<ir>`` and ``<vis>`` are the input layers' names):

=========================  ======================================================================
``fused [<ir> + <vis>]``   ``F`` (eq. 11) clipped to ``[0, 1]``; RGB when the visible layer is RGB
``base [<ir>]``, ...       ``I_k^b`` (eq. 1), one layer per source
``detail [<ir>]``, ...     ``I_k^d`` (eq. 2), diverging colormap centred on 0
``weights [<ir>]``, ...    ``Ŵ_k^i`` of each level (eq. 8) then ``Ŵ_k`` (eq. 9), stacked on a
                           leading axis labelled ``level``
``winning level [<ir>]``   Labels: ``1 + i`` where level ``i`` gave ``Ŵ_k`` (1 = conv1, ...)
=========================  ======================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..method.fuse import FusionResult, fuse
from ..options import FusionOptions
from .background import computable

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Image, Layer

__all__ = [
    "DEFAULT_OUTPUTS",
    "OUTPUTS",
    "FusionJob",
    "add_or_update_layers",
    "fuse_layers",
    "output_names",
    "prepare_job",
    "result_layer_data",
]

#: Outputs a run can add; ``"fused"`` is always added.
OUTPUTS: tuple[str, ...] = ("fused", "base", "detail", "weights", "winning level")
#: What the widget and :func:`fuse_layers` add unless told otherwise.
DEFAULT_OUTPUTS: tuple[str, ...] = ("fused", "weights")

#: ``metadata`` key that marks a layer as an output of this plugin (value: a dict with ``key``,
#: the layer's original name, used to find it again when a run is repeated).
MARKER = "napari_resfuse"

#: Label colours, shallow to deep level: a level keeps its colour across runs.
_LEVEL_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_DETAIL_COLORMAP = "PiYG"  # diverging: negative detail green-ish, positive pink
_WEIGHTS_COLORMAP = "viridis"


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


def output_names(infrared: str, visible: str) -> dict[str, tuple[str, ...]]:
    """The layer names each output gets, for inputs named ``infrared`` and ``visible``.

    >>> output_names("ir", "vis")["detail"]
    ('detail [ir]', 'detail [vis]')
    """
    per_source = {kind: (f"{kind} [{infrared}]", f"{kind} [{visible}]") for kind in OUTPUTS[1:]}
    return {"fused": (f"fused [{infrared} + {visible}]",), **per_source}


def _resolve_layer(viewer: napari.Viewer | None, layer: Any, role: str) -> Image:
    from napari.layers import Image

    if isinstance(layer, str):
        if viewer is None:
            raise ValueError(f"{role} is a layer name ({layer!r}) but no viewer was given")
        if layer not in viewer.layers:
            names = ", ".join(repr(lay.name) for lay in viewer.layers) or "none"
            raise ValueError(f"{role}: there is no layer named {layer!r} (layers: {names})")
        layer = viewer.layers[layer]
    if not isinstance(layer, Image):
        kind = type(layer).__name__
        name = getattr(layer, "name", None)
        raise ValueError(
            f"{role} must be an Image layer or an Image layer's name, got {kind} {name!r}"
        )
    if layer.multiscale:
        raise ValueError(
            f"{role} layer {layer.name!r} is multiscale: fuse one resolution level "
            "(add it as its own layer) instead"
        )
    return layer


def _spatial_shape(layer: Image) -> tuple[int, ...]:
    shape = tuple(np.shape(layer.data))
    return shape[:-1] if layer.rgb else shape


def _layer_value_range(layer: Image, dtype: np.dtype, role: str) -> tuple[float, float]:
    """METHOD.md, Inputs: uint8 is divided by 255, anything else scaled by the contrast limits."""
    if dtype == np.uint8:
        return (0.0, 255.0)
    lo, hi = (float(v) for v in layer.contrast_limits)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        raise ValueError(
            f"{role} layer {layer.name!r} has contrast limits ({lo:g}, {hi:g}): they scale its "
            "values to [0, 1], so set limits with low < high"
        )
    return (lo, hi)


def _resolve_pair(
    viewer, infrared, visible, options: FusionOptions | None, overrides: dict[str, Any]
) -> tuple[Image, Image, FusionOptions]:
    """The two input layers (checked to have the same shape) and the run's options."""
    ir_layer = _resolve_layer(viewer, infrared, "infrared")
    vis_layer = _resolve_layer(viewer, visible, "visible")
    ir_shape, vis_shape = _spatial_shape(ir_layer), _spatial_shape(vis_layer)
    if ir_shape != vis_shape and _layer_registration(ir_layer, vis_layer) is None:
        raise ValueError(
            f"layers {ir_layer.name!r} (infrared, shape {ir_shape}) and {vis_layer.name!r} "
            f"(visible, shape {vis_shape}{', RGB' if vis_layer.rgb else ''}) differ in shape: "
            "pick two layers with the same height, width and number of planes, or align them "
            "first ('Align infrared to visible')"
        )
    opts = options if options is not None else FusionOptions()
    if not isinstance(opts, FusionOptions):
        raise ValueError(f"options must be a FusionOptions, got {type(opts).__name__}")
    if overrides:
        opts = opts.replace(**overrides)
    return ir_layer, vis_layer, opts


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
    ir_layer, vis_layer, opts = _resolve_pair(viewer, infrared, visible, options, overrides)
    ir_data = np.asarray(computable(ir_layer.data))
    vis_data = np.asarray(computable(vis_layer.data))
    if opts.value_range is None and not (ir_data.dtype == vis_data.dtype == np.uint8):
        ranges = (
            _layer_value_range(ir_layer, ir_data.dtype, "infrared"),
            _layer_value_range(vis_layer, vis_data.dtype, "visible"),
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


def _check_outputs(outputs: Iterable[str]) -> tuple[str, ...]:
    wanted = {outputs} if isinstance(outputs, str) else set(outputs)
    unknown = sorted(wanted - set(OUTPUTS))
    if unknown:
        raise ValueError(f"outputs must be a subset of {OUTPUTS}, got unknown {unknown}")
    return tuple(kind for kind in OUTPUTS if kind in wanted or kind == "fused")


def _transform(layer: Image, extra_leading_axis: str | None = None) -> dict[str, Any]:
    """The infrared layer's world transform, optionally with a new leading (unit) axis."""
    scale = np.asarray(layer.scale, float)
    translate = np.asarray(layer.translate, float)
    rotate = np.asarray(layer.rotate, float)
    shear = np.asarray(layer.shear, float)
    affine = np.asarray(layer.affine.affine_matrix, float)
    units = tuple(str(u) for u in layer.units)
    labels = tuple(layer.axis_labels)
    if extra_leading_axis is not None:

        def grow(matrix):  # block-diag(1, matrix)
            out = np.eye(matrix.shape[0] + 1)
            out[1:, 1:] = matrix
            return out

        n = len(scale)
        shear_matrix = np.eye(n)
        shear_matrix[np.triu_indices(n, 1)] = shear
        scale = np.concatenate([[1.0], scale])
        translate = np.concatenate([[0.0], translate])
        rotate, shear, affine = grow(rotate), grow(shear_matrix), grow(affine)
        units = ("pixel", *units)
        labels = (extra_leading_axis, *labels)
    return {
        "scale": tuple(scale),
        "translate": tuple(translate),
        "rotate": rotate,
        "shear": shear,
        "affine": affine,
        "units": units,
        "axis_labels": labels,
    }


def _symmetric_limit(detail: np.ndarray) -> float:
    peak = float(np.max(np.abs(detail))) if detail.size else 0.0
    return peak if peak > 0 else 0.5


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
    kinds = _check_outputs(outputs)
    ir_name, vis_name = job.names
    names = output_names(ir_name, vis_name)
    grid_layer = job.infrared_layer if job.registration is None else job.visible_layer
    transform = _transform(grid_layer)
    spatial_ndim = len(_spatial_shape(grid_layer))

    def meta(kind: str, name: str, source: str | None, **extra: Any) -> dict[str, Any]:
        marker = {
            "key": name,
            "output": kind,
            "source": source,
            "infrared": ir_name,
            "visible": vis_name,
            **extra,
        }
        return {"params": result.params, "timings": result.timings, MARKER: marker}

    out: list[tuple[np.ndarray, dict[str, Any], str]] = []
    fused_name = names["fused"][0]
    rgb = result.fused.ndim == spatial_ndim + 1
    fused_kwargs = {
        "name": fused_name,
        "rgb": rgb,
        "contrast_limits": (0.0, 1.0),
        "metadata": meta("fused", fused_name, None),
        **transform,
    }
    if not rgb:
        fused_kwargs["colormap"] = "gray"
    out.append((result.fused, fused_kwargs, "image"))

    sources = (("infrared", 0), ("visible", 1))
    if "base" in kinds:
        for (source, k), name in zip(sources, names["base"], strict=True):
            kwargs = {"name": name, "colormap": "gray", "contrast_limits": (0.0, 1.0)}
            kwargs.update(metadata=meta("base", name, source), rgb=False, **transform)
            out.append((result.base[k], kwargs, "image"))
    if "detail" in kinds:
        limit = _symmetric_limit(result.detail)  # one scale for both, so they compare
        for (source, k), name in zip(sources, names["detail"], strict=True):
            kwargs = {
                "name": name,
                "colormap": _DETAIL_COLORMAP,
                "contrast_limits": (-limit, limit),
            }
            kwargs.update(metadata=meta("detail", name, source), rgb=False, **transform)
            out.append((result.detail[k], kwargs, "image"))
    if "weights" in kinds:
        levels = [*result.levels, "max"]
        level_transform = _transform(grid_layer, extra_leading_axis="level")
        for (source, k), name in zip(sources, names["weights"], strict=True):
            stack = np.concatenate([result.level_weights[k], result.weights[k][None]])
            kwargs = {"name": name, "colormap": _WEIGHTS_COLORMAP, "contrast_limits": (0.0, 1.0)}
            kwargs.update(
                metadata=meta("weights", name, source, levels=levels),
                rgb=False,
                **level_transform,
            )
            out.append((stack, kwargs, "image"))
    if "winning level" in kinds:
        colors = {None: "transparent", 0: "transparent"}
        colors.update(
            {i + 1: _LEVEL_COLORS[i % len(_LEVEL_COLORS)] for i in range(len(result.levels))}
        )
        features = {
            "index": np.arange(1, len(result.levels) + 1),
            "level": list(result.levels),
        }
        for (source, k), name in zip(sources, names["winning level"], strict=True):
            labels = result.winning_level[k].astype(np.uint8) + np.uint8(1)
            kwargs = {"name": name, "colormap": colors, "features": features, "opacity": 0.6}
            kwargs.update(
                metadata=meta("winning level", name, source, levels=list(result.levels)),
                **transform,
            )
            out.append((labels, kwargs, "labels"))
    return out


def _find_output(viewer: napari.Viewer, key: str) -> Layer | None:
    for layer in viewer.layers:
        marker = layer.metadata.get(MARKER)
        if isinstance(marker, dict) and marker.get("key") == key:
            return layer
    return None


def _update_in_place(layer: Layer, data: np.ndarray, kwargs: dict[str, Any]) -> bool:
    """Put new data and properties into an existing output layer; False if it cannot be."""
    layer_type = type(layer).__name__.lower()
    rgb = kwargs.get("rgb", False)
    if layer_type == "image" and bool(layer.rgb) != rgb:
        return False
    spatial = data.ndim - (1 if rgb else 0)
    if layer.ndim != spatial:
        return False
    layer.data = data
    for attr, value in kwargs.items():
        if attr in ("name", "rgb"):
            continue  # the user may have renamed it; rgb cannot change in place
        if attr == "contrast_limits":
            layer.contrast_limits_range = value
        setattr(layer, attr, value)
    return True


def add_or_update_layers(
    viewer: napari.Viewer, layer_data: Sequence[tuple[np.ndarray, dict[str, Any], str]]
) -> list[Layer]:
    """Add output layers to ``viewer``, or update the ones an earlier run added.

    A layer counts as "the same output" when its ``metadata`` carries this plugin's marker with
    the same key (the output's name from the input names), so a re-run on the same inputs
    replaces the data and properties of its layers in place, even if the user renamed them.
    Layers that cannot take the new data in place (say, grey fused output replaced by RGB) are
    replaced at the same position. Returns the layers, in the order of ``layer_data``.
    """
    from napari.layers import Layer

    layers: list[Layer] = []
    for data, kwargs, layer_type in layer_data:
        existing = _find_output(viewer, kwargs["metadata"][MARKER]["key"])
        if existing is not None and _update_in_place(existing, data, kwargs):
            layers.append(existing)
            continue
        layer = Layer.create(data, kwargs, layer_type)
        if existing is not None:
            index = viewer.layers.index(existing)
            viewer.layers.remove(existing)
            viewer.layers.insert(index, layer)
        else:
            viewer.add_layer(layer)
        layers.append(layer)
    return layers


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
    kinds = _check_outputs(outputs)
    ir_layer = _resolve_layer(viewer, infrared, "infrared")
    vis_layer = _resolve_layer(viewer, visible, "visible")
    from .lazy_layers import fuse_layers_lazy, is_lazy_data

    if is_lazy_data(ir_layer.data) or is_lazy_data(vis_layer.data):
        # dask/zarr-backed or very large stacks: lazy layers, fused plane by plane when shown
        return fuse_layers_lazy(
            viewer, ir_layer, vis_layer, outputs=kinds, options=options, **overrides
        )
    job = prepare_job(ir_layer, vis_layer, options, viewer=viewer, **overrides)
    result = fuse(job.infrared, job.visible, job.options)
    return add_or_update_layers(viewer, result_layer_data(result, job, kinds))
