"""The "Fusion metrics" dock widget, and the metrics of a fused layer stored in its metadata.

Data flows one way: Image layers -> :func:`prepare_metrics_job` (in the main thread: the displayed
plane of each layer, converted by :func:`metrics_input`) -> a napari thread worker that runs
:func:`napari_resfuse.metrics.compute_metrics` one fused layer and one metric at a time, yielding
each value -> the dock's table (rows: fused layers, columns: metrics, best value per metric in
bold) -> :func:`napari_resfuse.metrics.write_csv` ("Export CSV…").

:func:`store_metrics_in_metadata` is the same computation without a widget, for the fusion
widget and for scripts: it writes the values into ``fused_layer.metadata["metrics"]``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton, Select
from napari.layers import Image
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QFileDialog, QTableWidget, QTableWidgetItem

from ..io import from_unit_range
from ..metrics import DIRECTIONS, METRIC_NAMES, best_cells, compute_metrics, write_csv
from ._layer_specs import MARKER
from ._workers import QuietGeneratorWorker, WorkerRunner, follow_layer_list
from .background import computable

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = [
    "MetricsJob",
    "MetricsWidget",
    "metrics_input",
    "prepare_metrics_job",
    "store_metrics_in_metadata",
]

#: Header arrows: which way each metric is better.
ARROWS = {"higher": "↑", "lower": "↓"}
#: Errors whose message is meant for the user: a one-line notification, no traceback.
_USER_ERRORS = (ValueError,)
_IR_HINTS = ("infrared", "thermal", "lwir", "ir")
_VIS_HINTS = ("visible", "rgb", "vis")


# --- layers -> arrays ------------------------------------------------------------------------
def _check_layer(layer: Any, role: str) -> Image:
    if not isinstance(layer, Image):
        if layer is None:
            raise ValueError(f"{role}: choose an Image layer")
        kind, name = type(layer).__name__, getattr(layer, "name", None)
        raise ValueError(f"{role} must be an Image layer, got {kind} {name!r}")
    if layer.multiscale:
        raise ValueError(
            f"{role} layer {layer.name!r} is multiscale: add the resolution level to measure as "
            "its own layer"
        )
    return layer


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

    Handing the metrics a float image instead would not keep the contrast limits:
    :func:`~napari_resfuse.metrics.compute_metrics` rescales any non-``uint8`` image by its own
    minimum and maximum. So a fused layer from the engine (float in ``[0, 1]``, contrast limits
    ``(0, 1)``) gives the same values as its 8-bit PNG through ``resfuse metrics``.
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
    low, high = (float(v) for v in layer.contrast_limits)
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        raise ValueError(
            f"layer {layer.name!r} has contrast limits ({low:g}, {high:g}): they scale its "
            "values to [0, 1] for the metrics, so set limits with low < high"
        )
    return from_unit_range((values - low) / (high - low), np.uint8)


def _spatial_shape(layer: Image) -> tuple[int, ...]:
    shape = tuple(np.shape(layer.data))
    return shape[:-1] if layer.rgb else shape


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
    if names is None:
        return METRIC_NAMES
    chosen = {names} if isinstance(names, str) else set(names)
    unknown = sorted(chosen - set(METRIC_NAMES))
    if unknown:
        raise ValueError(f"metrics: unknown {unknown}; choose from {', '.join(METRIC_NAMES)}")
    if not chosen:
        raise ValueError("metrics: select at least one metric")
    return tuple(name for name in METRIC_NAMES if name in chosen)


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
    shapes = [_spatial_shape(layer)[-2:] for layer in layers]
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
    """Each metric in turn; NaN and the message where it is undefined (e.g. SCD, CC)."""
    for name in names:
        try:
            yield name, compute_metrics(infrared, visible, fused, names=[name])[name], None
        except ValueError as exc:  # inputs were validated: the metric is undefined here
            yield name, math.nan, str(exc)


def _metric_steps(job: MetricsJob) -> Generator[MetricValue, None, list[dict[str, Any]]]:
    """The worker's body: one :class:`MetricValue` per fused layer and metric, then the rows."""
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
    shapes = {role: _spatial_shape(layer) for role, layer in layers.items()}
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


# --- the widget -----------------------------------------------------------------------------
def _is_fused_output(layer: Image) -> bool:
    marker = layer.metadata.get(MARKER)
    return isinstance(marker, dict) and marker.get("output") == "fused"


def _is_output(layer: Image) -> bool:
    return isinstance(layer.metadata.get(MARKER), dict)


def _by_hint(layers: list[Image], hints: tuple[str, ...], avoid: Image | None) -> Image | None:
    for hint in hints:
        for layer in layers:
            words = layer.name.lower().replace("_", " ").replace("-", " ").split()
            if layer is not avoid and (hint in words or layer.name.lower().startswith(hint)):
                return layer
    return None


def _format_value(value: float) -> str:
    """Four decimals; small values (Nabf) in scientific notation; NaN (undefined) as n/a."""
    if math.isnan(value):
        return "n/a"
    if not math.isfinite(value):  # PSNR of images equal to both sources
        return str(value)
    if value == 0 or abs(value) >= 1e-3:
        return f"{value:.4f}"
    return f"{value:.3e}"


class MetricsWidget(WorkerRunner, Container):
    """Fusion quality metrics of fused Image layers, in a table in the dock.

    Choose the infrared and visible layers, one or more fused layers and the metrics (all by
    default), then Compute: the metrics run in a thread worker, one fused layer and one metric
    at a time, and fill the table as they come (rows: fused layers; columns: metrics, the header
    showing ``↑`` where higher is better and ``↓`` where lower is; the best value of each
    metric in bold when two or more layers are compared). "Export CSV…" saves the table with
    :func:`napari_resfuse.metrics.write_csv`.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose Image layers are offered.

    Notes
    -----
    Layers are read as :func:`metrics_input` says: ``uint8`` as is (÷ 255 in the metrics, as
    the published values were measured), any other dtype scaled by the layer's contrast limits
    to ``[0, 1]`` and quantised to 8 bits. Layers with more than two dimensions are measured on
    the plane the viewer displays (``viewer.dims.current_step``); the caption under the table
    names it. A metric that is undefined for a layer (e.g. SCD when the fused image equals the
    infrared one) shows ``n/a`` with the reason in its tooltip and in a warning notification.
    """

    _user_errors = _USER_ERRORS
    _cancelled_text = "cancelled: nothing computed"

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        # napari hands plugins a proxy of the viewer; layers taken from it would be proxies too,
        # which Qt's item models (the layer lists) cannot compare. Only public API is used.
        self._viewer = getattr(viewer, "__wrapped__", viewer)
        self._started = 0.0
        self._reasons: list[str] = []
        self._columns: tuple[str, ...] = ()  # the metrics of the table shown
        #: The rows of the last completed run, as :func:`~napari_resfuse.metrics.metrics_table`
        #: gives them (``pair``, ``method`` = fused layer name, one key per metric).
        self.rows: list[dict[str, Any]] = []
        #: The metrics of the last completed run, in table order.
        self.result_names: tuple[str, ...] = ()

        self.infrared_layer = ComboBox(label="infrared", choices=self._image_layers, nullable=True)
        self.visible_layer = ComboBox(label="visible", choices=self._image_layers, nullable=True)
        self.fused_layers = Select(label="fused", choices=self._image_layers)
        self.fused_layers.native.setMaximumHeight(110)
        self.metrics = Select(
            label="metrics",
            choices=[(f"{name} {ARROWS[DIRECTIONS[name]]}", name) for name in METRIC_NAMES],
            value=list(METRIC_NAMES),
        )
        self.metrics.native.setMaximumHeight(140)
        self.compute_button = PushButton(text="Compute")
        self._init_runner(self.compute_button, self.compute)  # makes self.progress, self.status
        self.extend(
            [
                self.infrared_layer,
                self.visible_layer,
                self.fused_layers,
                self.metrics,
                self.compute_button,
                self.progress,
                self.status,
            ]
        )
        # The results: a plain Qt table, its caption and the export button, under the fields.
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setMinimumHeight(120)
        self.caption = Label(value="")
        self.caption.native.setWordWrap(True)
        self.export_button = PushButton(text="Export CSV…", enabled=False)
        layout = self.native.layout()
        for widget in (self.table, self.caption.native, self.export_button.native):
            layout.addWidget(widget)

        self.export_button.changed.connect(self._on_export)
        self._resetting = False
        self._auto = [True, True, True]  # choices the user has not made are re-guessed
        self.infrared_layer.changed.connect(lambda *_: self._on_picked(0))
        self.visible_layer.changed.connect(lambda *_: self._on_picked(1))
        self.fused_layers.changed.connect(lambda *_: self._on_picked(2))
        follow_layer_list(self._viewer, self.reset_choices)
        self.reset_choices()

    # --- layer choices ---------------------------------------------------------------------
    def _image_layers(self, _widget=None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer lists (layers added, removed, reordered or renamed).

        Choices the user made stay while their layers exist. The others are guessed: the
        fused layers are this plugin's fused outputs, or else every layer that is neither
        source; the sources are the layers a fused output was made from, or else the layers
        whose names look like infrared (``infrared``, ``thermal``, ``ir``...) and visible
        (``visible``, ``rgb``, ``vis``) images.
        """
        keep = (self.infrared_layer.value, self.visible_layer.value, self.fused_layers.value)
        self._resetting = True
        try:
            super().reset_choices()
            layers = [layer for _, layer in self._image_layers()]

            def alive(layer):
                return layer is not None and any(layer is x for x in layers)

            ir = keep[0] if not self._auto[0] and alive(keep[0]) else None
            vis = keep[1] if not self._auto[1] and alive(keep[1]) else None
            fused = [lay for lay in keep[2] if alive(lay)] if not self._auto[2] else []
            self._auto = [ir is None, vis is None, not fused]
            outputs = [lay for lay in layers if _is_fused_output(lay)]
            if outputs and (ir is None or vis is None):
                marker = outputs[0].metadata[MARKER]
                names = {lay.name: lay for lay in layers}
                ir = ir if ir is not None else names.get(marker.get("infrared"))
                vis = vis if vis is not None else names.get(marker.get("visible"))
            inputs = [lay for lay in layers if not _is_output(lay)]
            if ir is None:
                ir = _by_hint(inputs, _IR_HINTS, avoid=vis)
            if vis is None:
                vis = _by_hint(inputs, _VIS_HINTS, avoid=ir)
            rest = [lay for lay in inputs if lay is not ir and lay is not vis]
            if ir is None and rest:
                ir = rest.pop(0)
            if vis is None and rest:
                vis = rest.pop(0)
            if not fused:
                fused = outputs or [lay for lay in layers if lay is not ir and lay is not vis]
            self.infrared_layer.value, self.visible_layer.value = ir, vis
            self.fused_layers.value = fused
        finally:
            self._resetting = False

    def _on_picked(self, index: int) -> None:
        if not self._resetting:
            self._auto[index] = False

    # --- running (is_running, the Compute/Cancel button: see WorkerRunner) ------------------
    def compute(self) -> GeneratorWorker | None:
        """Start computing in a thread worker; returns the worker, or None if none started.

        Bad choices (no fused layer, shapes that differ, a 3-D view, ...) are reported as a
        notification, clear the table and start nothing; so is a second run while one runs.
        """
        if self.is_running:
            show_info("napari-resfuse: metrics are already being computed; wait or cancel")
            return None
        try:
            job = prepare_metrics_job(
                self._viewer,
                self.infrared_layer.value,
                self.visible_layer.value,
                list(self.fused_layers.value),
                names=list(self.metrics.value),
            )
        except _USER_ERRORS as exc:
            self._clear_table()
            self.status.value = "nothing computed"
            show_error(f"napari-resfuse: {exc}")
            return None

        self._show_empty_table(job)
        worker = create_worker(
            _metric_steps, job, _start_thread=False, _worker_class=QuietGeneratorWorker
        )
        worker.yielded.connect(self._on_value)
        worker.returned.connect(lambda rows: self._on_returned(rows, job))
        worker.aborted.connect(self._on_aborted)
        worker.errored.connect(self._on_errored)
        self._reasons, self._started = [], time.perf_counter()
        return self._start_worker(
            worker,
            status=f"computing {len(job.names)} metrics of {len(job.fused)} layer(s)…",
            total=len(job.fused) * len(job.names),
        )

    def cancel(self) -> None:
        """Ask the running worker to stop after the current metric; the table is cleared."""
        self._cancel_worker("cancelling: stops after the current metric")

    def _on_value(self, cell: MetricValue) -> None:
        self.progress.value = self.progress.value + 1
        row_label = self.table.verticalHeaderItem(cell.row)
        self.status.value = (
            f"{cell.name} of {row_label.text() if row_label else cell.row} "
            f"({self.progress.value}/{self.progress.max})"
        )
        item = self.table.item(cell.row, self._columns.index(cell.name))
        if item is None:  # the table was cleared (cancelled) while values were on their way
            return
        item.setText(_format_value(cell.value))
        item.setData(Qt.UserRole, cell.value)
        if cell.error is not None:
            item.setToolTip(cell.error)
            self._reasons.append(f"{cell.name} of {row_label.text()!r}: {cell.error}")
        else:
            item.setToolTip(repr(cell.value))

    def _on_returned(self, rows: list[dict[str, Any]], job: MetricsJob) -> None:
        if self._cancelled:  # it finished before the cancel reached it: show nothing
            return
        self.rows, self.result_names = rows, job.names
        for row, name in best_cells(rows, names=job.names):
            item = self.table.item(row, self._columns.index(name))
            font = item.font()
            font.setBold(True)
            item.setFont(font)
            better = "higher" if DIRECTIONS[name] == "higher" else "lower"
            item.setToolTip(f"{item.toolTip()} (best: {better} is better)")
        self.table.resizeColumnsToContents()
        self.export_button.enabled = True
        seconds = time.perf_counter() - self._started
        self.status.value = f"done in {seconds:.1f} s"
        if self._reasons:
            show_warning("napari-resfuse: undefined, shown as n/a: " + "; ".join(self._reasons))

    def _on_aborted(self) -> None:
        self._clear_table()

    def _on_errored(self, exc: Exception) -> None:
        self._clear_table()
        super()._on_errored(exc)

    def _on_finished(self) -> None:
        super()._on_finished()
        if self._cancelled:
            self._clear_table()

    # --- the table -------------------------------------------------------------------------
    def _clear_table(self) -> None:
        self.rows, self.result_names, self._columns = [], (), ()
        self.table.clear()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.caption.value = ""
        self.export_button.enabled = False

    def _show_empty_table(self, job: MetricsJob) -> None:
        self._clear_table()
        self._columns = job.names
        self.table.setColumnCount(len(job.names))
        self.table.setRowCount(len(job.fused))
        self.table.setHorizontalHeaderLabels(
            [f"{name} {ARROWS[DIRECTIONS[name]]}" for name in job.names]
        )
        self.table.setVerticalHeaderLabels([label for label, _ in job.fused])
        for col, name in enumerate(job.names):
            header = self.table.horizontalHeaderItem(col)
            header.setToolTip(f"{DIRECTIONS[name]} is better")
            for row in range(len(job.fused)):
                item = QTableWidgetItem("…")
                item.setTextAlignment(int(Qt.AlignRight | Qt.AlignVCenter))
                self.table.setItem(row, col, item)
        where = f"on the displayed plane {job.plane}" if job.plane else "on the whole images"
        self.caption.value = (
            f"{job.sources[0]} + {job.sources[1]}, {where}. ↑ higher is better, ↓ lower is better; "
            "bold: the best of the layers compared."
        )

    # --- export ----------------------------------------------------------------------------
    def export_csv(self, path: str | Path) -> Path | None:
        """Write the last computed table to ``path`` as CSV (``pair, method, <metrics>``).

        Returns the path, or None (with a notification) when there is no table to export.
        """
        if not self.rows:
            show_info("napari-resfuse: compute the metrics first; there is nothing to export")
            return None
        written = write_csv(self.rows, path, names=self.result_names)
        self.status.value = f"saved {written.name}"
        return written

    def _on_export(self, *_: Any) -> None:
        path, _filter = QFileDialog.getSaveFileName(
            self.native, "Export fusion metrics", "fusion_metrics.csv", "CSV files (*.csv)"
        )
        if path:
            try:
                self.export_csv(path)
            except OSError as exc:
                show_error(f"napari-resfuse: could not write {path!r}: {exc}")
