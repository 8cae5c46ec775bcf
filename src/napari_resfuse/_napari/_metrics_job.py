"""What the "Fusion metrics" widget measures: layers -> 8-bit images -> metric values.

Data flows one way: Image layers -> :func:`prepare_metrics_job` (in the main thread: the
displayed plane of each layer, converted by :func:`metrics_input`) -> :func:`metric_steps`, a
generator that runs :func:`napari_resfuse.metrics.compute_metrics` one fused layer and one
metric at a time, yielding each :class:`MetricValue`, and returns the rows (as
:func:`~napari_resfuse.metrics.metrics_table` gives them).

:func:`store_metrics_in_metadata` is the same computation without a widget, for the fusion
widget and for scripts: it writes the values into ``fused_layer.metadata["metrics"]``.
No Qt here, and no torch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io import from_unit_range
from ..metrics import iter_metrics, resolve_names
from ._inputs import contrast_range, resolve_layer, spatial_shape
from .background import computable

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Image

__all__ = [
    "MetricValue",
    "MetricsJob",
    "metric_steps",
    "metrics_input",
    "prepare_metrics_job",
    "store_metrics_in_metadata",
]


# --- layers -> arrays ------------------------------------------------------------------------
def _check_layer(layer: Any, role: str) -> Image:
    advice = "add the resolution level to measure as its own layer"
    return resolve_layer(None, layer, role, multiscale_advice=advice)


def metrics_input(layer: Image, plane: tuple[int, ...] = ()) -> np.ndarray:
    """The image the metrics see for (a plane of) an Image layer: ``uint8``, 2-D or RGB.

    Parameters
    ----------
    layer : napari.layers.Image
        The layer (not modified). RGB(A) layers keep their channel axis; the metrics convert
        colour to luminance.
    plane : tuple of int
        Indices of the layer's leading (non-image) axes; ``()`` for a 2-D layer. The last two
        spatial axes of the layer form the image.

    Returns
    -------
    numpy.ndarray
        ``uint8`` of shape ``(H, W)`` (or ``(H, W, 3|4)`` for an RGB layer).

    Raises
    ------
    ValueError
        A non-numeric layer, NaN or infinite values, contrast limits with ``low >= high``, or a
        plane that is not 2-D once indexed.

    Notes
    -----
    ``uint8`` data passes through unchanged: the metrics divide it by 255, as MATLAB's
    ``im2double`` does for the 8-bit images the published values were measured on. Any other
    dtype is mapped to ``[0, 1]`` by the layer's contrast limits ``(low, high)``, i.e. as it is
    displayed, then quantised to 8 bits exactly as ``resfuse fuse`` writes a PNG
    (:func:`napari_resfuse.io.from_unit_range`):

    .. math:: x_8 = \\operatorname{round}\\bigl(255 \\cdot
              \\operatorname{clip}((x - low) / (high - low), 0, 1)\\bigr)

    Handing the metrics the data instead would not keep the contrast limits:
    :func:`~napari_resfuse.metrics.compute_metrics` takes integers by their type's range and
    floats only on ``[0, 1]``. So a fused layer from the engine (float in ``[0, 1]``, contrast
    limits ``(0, 1)``) gives the same values as its 8-bit PNG through ``resfuse metrics``.
    """
    data = computable(layer.data)
    array = np.asarray(data[plane] if plane else data)
    image_ndim = 3 if layer.rgb else 2
    if array.ndim != image_ndim:
        raise ValueError(
            f"layer {layer.name!r}: plane {plane} has shape {array.shape}, not a 2-D "
            f"{'RGB ' if layer.rgb else ''}image"
        )
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind not in "biuf":
        raise ValueError(f"layer {layer.name!r} holds {array.dtype} data, not a numeric image")
    values = array.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"layer {layer.name!r} contains NaN or infinite values")
    low, high = contrast_range(layer)
    return from_unit_range((values - low) / (high - low), np.uint8)


def _displayed_plane(viewer: napari.Viewer, layer: Image) -> tuple[int, ...]:
    """Indices of ``layer``'s leading axes at the viewer's current position (2-D view)."""
    ndim = layer.ndim
    if ndim == 2:
        return ()
    dims = viewer.dims
    if dims.ndisplay != 2:
        raise ValueError("the metrics need a 2-D plane: switch the viewer to 2-D display")
    offset = dims.ndim - ndim  # layers are aligned on their trailing axes
    displayed = [axis - offset for axis in dims.displayed]
    if sorted(displayed) != [ndim - 2, ndim - 1]:
        raise ValueError(
            f"layer {layer.name!r}: the viewer displays axes {tuple(dims.displayed)}; the "
            "metrics measure the last two axes of each layer, so display those (Roll or "
            "Transpose back)"
        )
    position = layer.world_to_data(dims.point)
    plane = []
    for axis in range(ndim - 2):
        index = int(np.round(position[axis]))  # napari's own slicing rounds the same way
        if not 0 <= index < layer.data.shape[axis]:
            raise ValueError(
                f"layer {layer.name!r} has no plane at the displayed position (axis {axis}, "
                f"index {index})"
            )
        plane.append(index)
    return tuple(plane)


@dataclass(frozen=True)
class MetricsJob:
    """What a metrics run measures, read from the layers in the main thread.

    Attributes
    ----------
    pair : str
        The ``pair`` label of the rows: ``"<ir> + <vis>"``, plus the plane for N-D layers.
    sources : (str, str)
        The infrared and visible layers' names.
    infrared, visible : ndarray
        The sources as the metrics see them (see :func:`metrics_input`).
    fused : tuple of (str, ndarray)
        Each fused layer's name and image.
    names : tuple of str
        The metrics, in :data:`~napari_resfuse.metrics.METRIC_NAMES` order.
    plane : str
        ``""`` when every layer is 2-D, else the displayed position (e.g. ``"t=3"``).
    """

    pair: str
    sources: tuple[str, str]
    infrared: np.ndarray
    visible: np.ndarray
    fused: tuple[tuple[str, np.ndarray], ...]
    names: tuple[str, ...]
    plane: str = ""


def _resolve_names(names) -> tuple[str, ...]:
    return resolve_names(names, label="metrics")


def _plane_text(viewer: napari.Viewer) -> str:
    dims = viewer.dims
    parts = []
    for axis in range(dims.ndim):
        if axis in dims.displayed:
            continue
        label = str(dims.axis_labels[axis])
        if label.lstrip("-").isdigit():  # napari's default labels are axis numbers
            label = f"axis {axis}"
        parts.append(f"{label}={dims.current_step[axis]}")
    return ", ".join(parts)


def prepare_metrics_job(
    viewer: napari.Viewer,
    infrared: Image,
    visible: Image,
    fused: Sequence[Image],
    names=None,
) -> MetricsJob:
    """Read the layers to measure: their displayed plane, converted by :func:`metrics_input`.

    Parameters
    ----------
    viewer : napari.Viewer
        Its current position picks the plane of N-D layers.
    infrared, visible : napari.layers.Image
        The source layers.
    fused : sequence of napari.layers.Image
        One or more fused layers (any Image layer: a source itself may serve as a baseline).
    names : iterable of str, optional
        The metrics; all of them by default.

    Returns
    -------
    MetricsJob

    Raises
    ------
    ValueError
        No fused layer, unknown metric names, a layer that is not a usable Image layer, a 3-D
        view, or planes whose height and width differ (the message names the layers).
    """
    selected = _resolve_names(names)
    ir_layer = _check_layer(infrared, "infrared")
    vis_layer = _check_layer(visible, "visible")
    fused_layers = [_check_layer(layer, "fused") for layer in fused]
    if not fused_layers:
        raise ValueError("fused: choose one or more fused Image layers")
    layers = [ir_layer, vis_layer, *fused_layers]
    planes = [_displayed_plane(viewer, layer) for layer in layers]
    shapes = [spatial_shape(layer)[-2:] for layer in layers]
    for layer, shape in zip(layers[1:], shapes[1:], strict=True):
        if shape != shapes[0]:
            role = "visible" if layer is vis_layer else "fused"
            raise ValueError(
                f"layers {ir_layer.name!r} (infrared, {shapes[0][0]} x {shapes[0][1]}) and "
                f"{layer.name!r} ({role}, {shape[0]} x {shape[1]}) differ in height and width: "
                "the metrics compare images pixel by pixel"
            )
    images = [metrics_input(layer, plane) for layer, plane in zip(layers, planes, strict=True)]
    plane = _plane_text(viewer) if any(layer.ndim > 2 for layer in layers) else ""
    pair = f"{ir_layer.name} + {vis_layer.name}" + (f" ({plane})" if plane else "")
    return MetricsJob(
        pair=pair,
        sources=(ir_layer.name, vis_layer.name),
        infrared=images[0],
        visible=images[1],
        fused=tuple(zip([layer.name for layer in fused_layers], images[2:], strict=True)),
        names=selected,
        plane=plane,
    )


# --- the computation ------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricValue:
    """One computed cell: fused layer ``row``, metric ``name``; ``error`` if it is undefined."""

    row: int
    name: str
    value: float
    error: str | None = None


def _metric_values(
    infrared: np.ndarray, visible: np.ndarray, fused: np.ndarray, names: Sequence[str]
) -> Iterator[tuple[str, float, str | None]]:
    """Each metric in turn; NaN and the message where it is undefined (e.g. SCD, CC).

    The triple is validated once (:func:`~napari_resfuse.metrics.iter_metrics`), not per metric.
    """
    yield from iter_metrics(infrared, visible, fused, names)


def metric_steps(job: MetricsJob) -> Generator[MetricValue, None, list[dict[str, Any]]]:
    """One :class:`MetricValue` per fused layer and metric, then the rows (the widget's worker
    runs it)."""
    rows: list[dict[str, Any]] = []
    for row, (label, fused) in enumerate(job.fused):
        values = {}
        for name, value, error in _metric_values(job.infrared, job.visible, fused, job.names):
            values[name] = value
            yield MetricValue(row, name, value, error)
        rows.append({"pair": job.pair, "method": label, **values})
    return rows


def store_metrics_in_metadata(
    fused_layer: Image, infrared_layer: Image, visible_layer: Image, names=None
) -> dict[str, float]:
    """Compute the metrics of a fused layer against its sources; store them in its metadata.

    Parameters
    ----------
    fused_layer : napari.layers.Image
        The fused layer; ``fused_layer.metadata["metrics"]`` is set (its data is not touched).
    infrared_layer, visible_layer : napari.layers.Image
        The source layers, of the same height and width (and number of planes) as the fused one.
    names : str or iterable of str, optional
        The metrics; all of :data:`~napari_resfuse.metrics.METRIC_NAMES` by default.

    Returns
    -------
    dict of str to float
        Metric name -> value, in :data:`~napari_resfuse.metrics.METRIC_NAMES` order; the same
        dict is stored. A metric undefined for these images (e.g. ``scd`` when the fused image
        equals a source) is NaN, with a ``RuntimeWarning`` that gives the reason.

    Raises
    ------
    ValueError
        Unknown metric names, layers that are not usable Image layers, or layers of different
        shapes.

    Notes
    -----
    Layers are read as by :func:`metrics_input` (``uint8`` as is, other dtypes through their
    contrast limits to 8 bits). Layers with leading axes (stacks) are measured plane by plane,
    each plane ``layer.data[i, ...]``, and the stored value of each metric is its mean over the
    planes, as :func:`~napari_resfuse.metrics.metrics_table` averages over pairs.

    It runs synchronously (all metrics: about 0.5 s for 240 x 320 and 2 s for 640 x 480 per
    plane on two CPU cores) and may be called from a worker thread: it reads the layers and
    sets one key of the metadata dict, which emits no event.
    """
    selected = _resolve_names(names)
    layers = {
        "fused": _check_layer(fused_layer, "fused"),
        "infrared": _check_layer(infrared_layer, "infrared"),
        "visible": _check_layer(visible_layer, "visible"),
    }
    shapes = {role: spatial_shape(layer) for role, layer in layers.items()}
    if len(set(shapes.values())) != 1:
        described = ", ".join(
            f"{role} {layers[role].name!r} {shape}" for role, shape in shapes.items()
        )
        raise ValueError(f"layers differ in shape: {described}; each must be one fused triple")
    leading = shapes["fused"][:-2]
    totals = dict.fromkeys(selected, 0.0)
    reasons: dict[str, str] = {}
    for plane in product(*(range(n) for n in leading)):
        ir, vis, fused = (
            metrics_input(layers[role], plane) for role in ("infrared", "visible", "fused")
        )
        for name, value, error in _metric_values(ir, vis, fused, selected):
            totals[name] += value
            if error is not None:
                reasons.setdefault(name, error)
    count = math.prod(leading)
    values = {name: float(total / count) for name, total in totals.items()}
    for name, reason in reasons.items():
        warnings.warn(
            f"{name} of {fused_layer.name!r} is undefined (stored as NaN): {reason}",
            RuntimeWarning,
            stacklevel=2,
        )
    fused_layer.metadata["metrics"] = values
    return values
