"""The plugin's output layers, described once: names, colormaps, transforms, marker, metadata.

Both ways a fusion reaches the viewer build their layers here: the in-memory run
(:func:`napari_resfuse._napari.layers.result_layer_data`, numpy data from a
:class:`~napari_resfuse.FusionResult`) and the lazy one
(:func:`napari_resfuse._napari.lazy_layers.lazy_layer_data`, dask data from a
:class:`~napari_resfuse.lazy.LazyFusion`), and so does the "Compare methods" widget
(:func:`method_layer_data`). :func:`add_or_update_layers` puts such layers into a viewer,
updating the ones an earlier run added. This module imports neither torch nor Qt (the metrics
widget reads :data:`MARKER` from it without loading the network), and napari only inside
:func:`add_or_update_layers`.

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

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..lazy import LazyFusion

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Image, Layer

    from ..method.fuse import FusionResult

__all__ = [
    "DEFAULT_OUTPUTS",
    "DETAIL_LIMITS",
    "MARKER",
    "OUTPUTS",
    "LayerData",
    "add_or_update_layers",
    "check_outputs",
    "find_output",
    "layer_transform",
    "method_layer_data",
    "output_layer_data",
    "output_names",
    "result_name",
]

#: A napari ``LayerDataTuple``: data, layer keyword arguments, layer type.
LayerData = tuple[Any, dict[str, Any], str]

#: Outputs a run can add; ``"fused"`` is always added.
OUTPUTS: tuple[str, ...] = ("fused", "base", "detail", "weights", "winning level")
#: What the widget and :func:`~napari_resfuse.fuse_layers` add unless told otherwise.
DEFAULT_OUTPUTS: tuple[str, ...] = ("fused", "weights")
#: ``metadata`` key that marks a layer as an output of this plugin (value: a dict with ``key``,
#: the layer's original name, used to find it again when a run is repeated; ``output``, its
#: kind; ``infrared`` and ``visible``, the names of its sources).
MARKER = "napari_resfuse"
#: Contrast limits of lazy detail layers (in-memory ones use the data's own peak: a lazy layer
#: cannot look at all of its data without fusing every plane).
DETAIL_LIMITS = (-0.5, 0.5)

#: Label colours, shallow to deep level: a level keeps its colour across runs.
_LEVEL_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_DETAIL_COLORMAP = "PiYG"  # diverging: negative detail green-ish, positive pink
_WEIGHTS_COLORMAP = "viridis"
_SOURCES = (("infrared", 0), ("visible", 1))


def output_names(infrared: str, visible: str) -> dict[str, tuple[str, ...]]:
    """The layer names each output gets, for inputs named ``infrared`` and ``visible``.

    >>> output_names("ir", "vis")["detail"]
    ('detail [ir]', 'detail [vis]')
    """
    per_source = {kind: (f"{kind} [{infrared}]", f"{kind} [{visible}]") for kind in OUTPUTS[1:]}
    return {"fused": (f"fused [{infrared} + {visible}]",), **per_source}


def result_name(method: str, infrared: str, visible: str) -> str:
    """The name of a compared method's layer: ``"gff [ir + vis]"``."""
    return f"{method} [{infrared} + {visible}]"


def check_outputs(outputs: Iterable[str]) -> tuple[str, ...]:
    """``outputs`` in :data:`OUTPUTS` order, ``"fused"`` always included; unknown kinds raise
    ``ValueError``."""
    wanted = {outputs} if isinstance(outputs, str) else set(outputs)
    unknown = sorted(wanted - set(OUTPUTS))
    if unknown:
        raise ValueError(f"outputs must be a subset of {OUTPUTS}, got unknown {unknown}")
    return tuple(kind for kind in OUTPUTS if kind in wanted or kind == "fused")


def layer_transform(layer: Image, extra_leading_axis: str | None = None) -> dict[str, Any]:
    """``layer``'s world transform as layer keywords (scale, translate, rotate, shear, affine,
    units, axis labels), optionally with a new leading axis of unit scale named
    ``extra_leading_axis``."""
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


def output_layer_data(
    run: FusionResult | LazyFusion,
    grid_layer: Image,
    names: tuple[str, str],
    outputs: Iterable[str] = DEFAULT_OUTPUTS,
) -> list[LayerData]:
    """The output layers of a fusion run as napari ``LayerDataTuple`` s ``(data, kwargs, type)``.

    Parameters
    ----------
    run : FusionResult or LazyFusion
        The run's arrays: numpy (in memory) or dask (lazy).
    grid_layer : napari.layers.Image
        The input layer on whose data grid the run's arrays lie: every output takes its
        transform (the weights gain a leading ``level`` axis). The infrared layer for a pair
        fused pixel for pixel, the visible layer when the infrared one was resampled onto the
        visible grid.
    names : (str, str)
        The input layers' names; the outputs are named from them (:func:`output_names`).
    outputs : iterable of str
        Which of :data:`OUTPUTS` to return; ``"fused"`` is always returned.

    Returns
    -------
    list of (array, dict, str)
        In the order fused, base, detail, weights, winning level; infrared before visible.
        Every layer's ``metadata`` holds ``params``, ``timings`` (empty for a lazy run) and a
        :data:`MARKER` entry naming the output and its inputs. A lazy run's layers are created
        hidden (so that napari does not slice them before they are in the viewer), with fixed
        detail limits (:data:`DETAIL_LIMITS`), and their marker also holds ``"lazy": True`` and
        the :class:`~napari_resfuse.lazy.LazyFusion`.
    """
    kinds = check_outputs(outputs)
    lazy = isinstance(run, LazyFusion)
    ir_name, vis_name = names
    layer_names = output_names(ir_name, vis_name)
    transform = layer_transform(grid_layer)
    timings = {} if lazy else run.timings
    marker_extra = {"lazy": True, "lazy_fusion": run} if lazy else {}
    hidden = {"visible": False, "multiscale": False} if lazy else {}

    def meta(kind: str, name: str, source: str | None, **extra: Any) -> dict[str, Any]:
        marker = {
            "key": name,
            "output": kind,
            "source": source,
            "infrared": ir_name,
            "visible": vis_name,
            **marker_extra,
            **extra,
        }
        return {"params": run.params, "timings": timings, MARKER: marker}

    def image(data, kind, name, source, colormap, limits, *, rgb=False, at=transform, **extra):
        kwargs = {"name": name, "rgb": rgb, "contrast_limits": limits, **hidden, **at}
        if colormap is not None:
            kwargs["colormap"] = colormap
        kwargs["metadata"] = meta(kind, name, source, **extra)
        return (data, kwargs, "image")

    rgb = run.fused.ndim == run.weights.ndim  # weights: (2, *S); fused: S or S + (3,)
    fused_name = layer_names["fused"][0]
    colormap = None if rgb else "gray"
    out = [image(run.fused, "fused", fused_name, None, colormap, (0.0, 1.0), rgb=rgb)]
    if "base" in kinds:
        for (source, k), name in zip(_SOURCES, layer_names["base"], strict=True):
            out.append(image(run.base[k], "base", name, source, "gray", (0.0, 1.0)))
    if "detail" in kinds:
        limit = DETAIL_LIMITS[1] if lazy else _symmetric_limit(run.detail)  # one scale for both
        for (source, k), name in zip(_SOURCES, layer_names["detail"], strict=True):
            data = run.detail[k]
            out.append(image(data, "detail", name, source, _DETAIL_COLORMAP, (-limit, limit)))
    if "weights" in kinds:
        levels = [*run.levels, "max"]
        if lazy:
            from dask.array import concatenate
        else:
            concatenate = np.concatenate
        level_transform = layer_transform(grid_layer, extra_leading_axis="level")
        for (source, k), name in zip(_SOURCES, layer_names["weights"], strict=True):
            stack = concatenate([run.level_weights[k], run.weights[k][None]], axis=0)
            extra = {"at": level_transform, "levels": levels}
            out.append(
                image(stack, "weights", name, source, _WEIGHTS_COLORMAP, (0.0, 1.0), **extra)
            )
    if "winning level" in kinds:
        colors = {None: "transparent", 0: "transparent"}
        colors.update(
            {i + 1: _LEVEL_COLORS[i % len(_LEVEL_COLORS)] for i in range(len(run.levels))}
        )
        features = {"index": np.arange(1, len(run.levels) + 1), "level": list(run.levels)}
        for (source, k), name in zip(_SOURCES, layer_names["winning level"], strict=True):
            labels = run.winning_level[k].astype(np.uint8) + np.uint8(1)
            kwargs = {"name": name, "colormap": colors, "features": features, "opacity": 0.6}
            kwargs.update(
                metadata=meta("winning level", name, source, levels=list(run.levels)),
                **hidden,
                **transform,
            )
            out.append((labels, kwargs, "labels"))
    return out


def method_layer_data(
    fused: np.ndarray,
    method: str,
    grid_layer: Image,
    names: tuple[str, str],
    metrics: Mapping[str, float],
) -> LayerData:
    """The layer of one compared method's result (the "Compare methods" widget): named
    :func:`result_name`, grey, the transform of ``grid_layer`` (the layer whose pixel grid the
    result is on: the infrared one, or the visible one when the infrared was resampled onto
    it), ``metadata["metrics"]`` and a :data:`MARKER` entry with ``output="compare"`` and the
    ``method``."""
    ir_name, vis_name = names
    name = result_name(method, ir_name, vis_name)
    marker = {
        "key": name,
        "output": "compare",
        "method": method,
        "infrared": ir_name,
        "visible": vis_name,
    }
    high = 1.0 if fused.dtype.kind == "f" else float(np.iinfo(fused.dtype).max)
    kwargs = {
        "name": name,
        "colormap": "gray",
        "contrast_limits": (0.0, high),
        "metadata": {"metrics": dict(metrics), MARKER: marker},
        **layer_transform(grid_layer),
    }
    return (fused, kwargs, "image")


def find_output(viewer: napari.Viewer, key: str) -> Layer | None:
    """The layer of ``viewer`` that this plugin added as output ``key`` (see :data:`MARKER`)."""
    for layer in viewer.layers:
        marker = layer.metadata.get(MARKER)
        if isinstance(marker, dict) and marker.get("key") == key:
            return layer
    return None


def _update_in_place(layer: Layer, data: Any, kwargs: dict[str, Any]) -> bool:
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


def add_or_update_layers(viewer: napari.Viewer, layer_data: Sequence[LayerData]) -> list[Layer]:
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
        existing = find_output(viewer, kwargs["metadata"][MARKER]["key"])
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
