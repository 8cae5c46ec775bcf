"""The "Compare methods" dock widget.

Pick the infrared and visible layers and the methods of :data:`napari_resfuse.compare.METHODS`;
a napari thread worker fuses the pair with one method after the other
(:func:`napari_resfuse.compare.iter_compare_arrays`), each result is added as a layer as soon as
it is ready, and at the end the viewer switches to grid mode with the two sources first, then
the methods in the order chosen, so that all of them pan and zoom together. The metrics of
every method show in a table in the dock (a row per metric with its direction, ``↑`` or
``↓``; a column per method; the best value of each metric in bold).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, PushButton, Select, SpinBox
from magicgui.widgets import Table as _Table
from napari.layers import Image
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils.notifications import show_error, show_info

from ..compare import DEFAULT_METHODS, METHODS, MethodResult, iter_compare_arrays
from ..metrics.table import DIRECTIONS, MEAN_PAIR, METRIC_NAMES, best_cells
from ._layer_specs import MARKER, add_or_update_layers, method_layer_data, result_name
from ._widget import device_choices
from ._workers import QuietGeneratorWorker, WorkerRunner, follow_layer_list, relay
from .background import computable

__all__ = ["CompareWidget", "arrange_grid", "result_name"]

_USER_ERRORS = (ValueError, FileNotFoundError)
_WEIGHTS_CHOICES = (("ImageNet (pretrained)", "imagenet"), ("random (testing only)", "random"))
_IR_HINTS = ("infrared", "thermal", "lwir", "ir")
_VIS_HINTS = ("visible", "rgb", "vis")
_ARROWS = {"higher": "↑", "lower": "↓"}


def _grid(viewer):
    """The viewer's grid model (``viewer.canvas.grid`` from napari 0.9, ``viewer.grid`` before)."""
    canvas = getattr(viewer, "canvas", None)
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid


def _grid_position(grid, index: int, layers) -> tuple[int, int]:
    try:
        return tuple(grid.position(index, layers))
    except TypeError:  # napari < 0.6: position(index, number_of_layers)
        return tuple(grid.position(index, len(layers)))


def arrange_grid(viewer: napari.Viewer, ordered: Sequence) -> None:
    """Switch ``viewer`` to grid mode with ``ordered`` layers in the first grid cells, in order.

    The layers are made visible and moved together in the layer list; other visible layers
    take the cells after them.
    """
    layers = viewer.layers
    for layer in ordered:
        layer.visible = True
    for target, layer in enumerate(ordered):  # bottom of the list, in order
        source = layers.index(layer)
        if source != target:
            layers.move(source, target)
    grid = _grid(viewer)
    grid.enabled = True
    if _grid_position(grid, layers.index(ordered[0]), layers) != (0, 0):
        # This napari fills the grid from the top of the layer list: put them there.
        for layer in reversed(ordered):
            layers.move(layers.index(layer), len(layers))
    viewer.reset_view()


def _compare_steps(job: dict[str, Any]) -> Generator[MethodResult, None, list[dict[str, Any]]]:
    """The worker's body: one :class:`MethodResult` per method, then the metric rows."""
    runner = iter_compare_arrays(
        job["infrared"],
        job["visible"],
        job["methods"],
        weights=job["weights"],
        seed=job["seed"],
        device=job["device"],
        value_ranges=job["value_ranges"],
    )
    return (yield from relay(runner))


class _CompareWorker(QuietGeneratorWorker):
    """napari's generator worker; the widget reports errors itself (see ``_on_errored``)."""


def _value_range(layer: Image, data: np.ndarray) -> tuple[float, float] | None:
    """``uint8`` is divided by 255; any other type is scaled by the layer's contrast limits."""
    if data.dtype == np.uint8:
        return None
    low, high = (float(v) for v in layer.contrast_limits)
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        raise ValueError(
            f"layer {layer.name!r} has contrast limits ({low:g}, {high:g}): they scale its "
            "values to [0, 1], so set limits with low < high"
        )
    return (low, high)


class CompareWidget(WorkerRunner, Container):
    """Compare fusion methods on two Image layers, in a thread worker.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose Image layers are offered and which receives the results.

    Notes
    -----
    Each method's result is a layer named ``"<method> [<infrared> + <visible>]"``; running
    again on the same layers updates those layers. Layers are 2-D (grey or RGB, compared on the
    luminance); ``uint8`` data is divided by 255, other types scaled by the layer's contrast
    limits. Network methods use torchvision's ImageNet weights (downloaded on first use) or
    seeded random weights (for trying the widget out; their results mean nothing); weights
    files per backbone are an option of :func:`napari_resfuse.compare.compare` and
    ``resfuse compare``.
    """

    _user_errors = _USER_ERRORS
    _cancelled_text = "cancelled: the layers added so far stay"

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = getattr(viewer, "__wrapped__", viewer)
        #: The result layers of the last completed run, in method order.
        self.last_layers: list = []
        #: The metric rows of the last completed run (one per method, then the means).
        self.last_rows: list[dict[str, Any]] = []

        self.infrared_layer = ComboBox(label="infrared", choices=self._image_layers, nullable=True)
        self.visible_layer = ComboBox(label="visible", choices=self._image_layers, nullable=True)
        self.methods = Select(label="methods", choices=tuple(METHODS), value=list(DEFAULT_METHODS))
        self.methods.native.setMinimumHeight(150)
        self.weights = ComboBox(label="weights", choices=_WEIGHTS_CHOICES, value="imagenet")
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.device = ComboBox(label="device", choices=device_choices(), value="auto")
        self.run_button = PushButton(text="Run")
        self._init_runner(self.run_button, self.run)  # also makes self.progress, self.status
        self.table = _Table(label="metrics")
        self.table.read_only = True
        self.table.native.setMinimumHeight(360)
        self.extend(
            [
                self.infrared_layer,
                self.visible_layer,
                self.methods,
                self.weights,
                self.seed,
                self.device,
                self.run_button,
                self.progress,
                self.status,
                self.table,
            ]
        )
        self.weights.changed.connect(self._on_weights_mode)
        self._on_weights_mode()
        follow_layer_list(self._viewer, self.reset_choices)
        self.reset_choices()

    # --- layer choices ---------------------------------------------------------------------
    def _image_layers(self, _widget=None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer lists; keep choices that still exist, else guess from the names."""
        keep = (self.infrared_layer.value, self.visible_layer.value)
        super().reset_choices()
        layers = [layer for _, layer in self._image_layers()]
        inputs = [lay for lay in layers if not isinstance(lay.metadata.get(MARKER), dict)]
        ir, vis = (lay if any(lay is x for x in layers) else None for lay in keep)
        if ir is None:
            ir = _guess(inputs, _IR_HINTS, avoid=vis)
        if vis is None:
            vis = _guess(inputs, _VIS_HINTS, avoid=ir)
        self.infrared_layer.value, self.visible_layer.value = ir, vis

    def _on_weights_mode(self, *_: Any) -> None:
        self.seed.visible = self.weights.value == "random"

    # --- running (is_running, the Run/Cancel button: see WorkerRunner) ----------------------
    def _job(self) -> dict[str, Any]:
        ir_layer, vis_layer = self.infrared_layer.value, self.visible_layer.value
        if ir_layer is None or vis_layer is None:
            raise ValueError("choose an infrared and a visible Image layer")
        if ir_layer is vis_layer:
            raise ValueError("choose two different layers for infrared and visible")
        methods = tuple(name for name in METHODS if name in self.methods.value)
        if not methods:
            raise ValueError("choose at least one method")
        arrays = []
        for role, layer in (("infrared", ir_layer), ("visible", vis_layer)):
            if layer.multiscale:
                raise ValueError(f"{role} layer {layer.name!r} is multiscale: not supported")
            spatial = layer.ndim
            if spatial != 2:
                raise ValueError(
                    f"{role} layer {layer.name!r} has {spatial} dimensions: compare 2-D "
                    "images (fuse stacks with the 'Fuse infrared + visible' widget)"
                )
            arrays.append(np.asarray(computable(layer.data)))
        return {
            "infrared": arrays[0],
            "visible": arrays[1],
            "value_ranges": (
                _value_range(ir_layer, arrays[0]),
                _value_range(vis_layer, arrays[1]),
            ),
            "methods": methods,
            "weights": self.weights.value,
            "seed": int(self.seed.value),
            "device": self.device.value,
            "layers": (ir_layer, vis_layer),
            "names": (ir_layer.name, vis_layer.name),
        }

    def run(self) -> GeneratorWorker | None:
        """Start a run in a thread worker; returns the worker, or None if none was started."""
        if self.is_running:
            show_info("napari-resfuse: a comparison is already running; wait or cancel it")
            return None
        try:
            job = self._job()
        except _USER_ERRORS as exc:
            show_error(f"napari-resfuse: {exc}")
            return None
        worker = create_worker(
            _compare_steps,
            job,
            _start_thread=False,
            _worker_class=_CompareWorker,
            _ignore_errors=True,
        )
        added: list = []
        worker.yielded.connect(lambda result: self._on_result(result, job, added))
        worker.returned.connect(lambda rows: self._on_returned(rows, job, added))
        worker.errored.connect(self._on_errored)
        methods = job["methods"]
        return self._start_worker(worker, status=f"fusing with {methods[0]}…", total=len(methods))

    def cancel(self) -> None:
        """Stop after the current method; the layers added so far stay."""
        self._cancel_worker("cancelling: stops after the current method")

    def _on_result(self, result: MethodResult, job: dict[str, Any], added: list) -> None:
        ir_layer, _ = job["layers"]
        data = method_layer_data(
            result.fused, result.method, ir_layer, job["names"], result.metrics
        )
        added.extend(add_or_update_layers(self._viewer, [data]))
        done = len(added)
        self.progress.value = done
        methods = job["methods"]
        if done < len(methods):
            self.status.value = f"fusing with {methods[done]}… ({done}/{len(methods)} done)"

    def _on_returned(self, rows: list[dict[str, Any]], job: dict[str, Any], added: list) -> None:
        self.last_layers, self.last_rows = list(added), rows
        self.show_table(rows)
        if added:
            arrange_grid(self._viewer, [*job["layers"], *added])
        note = " (random weights: testing only)" if job["weights"] == "random" else ""
        self.status.value = f"done: {len(added)} method(s){note}"

    def show_table(self, rows: Sequence[dict[str, Any]], digits: int = 4) -> None:
        """Show metric rows in the dock's table: one row per metric (``↑`` higher is better,
        ``↓`` lower is better), one column per method, the best value of each metric in bold."""
        shown = [row for row in rows if row["pair"] != MEAN_PAIR]
        names = [n for n in METRIC_NAMES if shown and n in shown[0]]
        best = best_cells(shown, names=names)
        self.table.value = {
            "data": [[f"{float(row[n]):.{digits}f}" for row in shown] for n in names],
            "index": [f"{n} {_ARROWS[DIRECTIONS[n]]}" for n in names],
            "columns": [str(row["method"]) for row in shown],
        }
        native = self.table.native
        for method_index, name in best:
            item = native.item(names.index(name), method_index)
            if item is not None:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
        native.resizeColumnsToContents()


def _guess(layers: list, hints: tuple[str, ...], avoid) -> Any:
    """The first layer whose name matches a hint, else the first other layer."""
    for hint in hints:
        for layer in layers:
            words = layer.name.lower().replace("_", " ").replace("-", " ").split()
            if layer is not avoid and (hint in words or layer.name.lower().startswith(hint)):
                return layer
    others = [lay for lay in layers if lay is not avoid]
    return others[0] if others else None
