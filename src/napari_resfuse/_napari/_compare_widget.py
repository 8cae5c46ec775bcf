"""The "Compare methods" dock widget.

Pick the infrared and visible layers and the methods of :data:`napari_resfuse.compare.METHODS`;
a thread worker fuses the pair with one method after the other
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
from magicgui.widgets import ComboBox, Select, SpinBox
from magicgui.widgets import Table as _Table
from superqt.utils import GeneratorWorker

from ..compare import DEFAULT_METHODS, METHODS, MethodResult, iter_compare_arrays
from ..metrics.table import DIRECTIONS, MEAN_PAIR, METRIC_NAMES, best_cells
from ._alignment import layer_registration
from ._dock import USER_AND_FILE_ERRORS, DockWidget
from ._inputs import contrast_range, grid_layer
from ._layer_specs import add_or_update_layers, method_layer_data, result_name
from ._widget import device_choices
from .background import computable

__all__ = ["CompareWidget", "arrange_grid", "result_name"]

_WEIGHTS_CHOICES = (("ImageNet (pretrained)", "imagenet"), ("random (testing only)", "random"))
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
    """One :class:`MethodResult` per method, then the metric rows (run by the worker)."""
    # The one place the compare widget runs the comparison's generator.
    return iter_compare_arrays(
        job["infrared"],
        job["visible"],
        job["methods"],
        weights=job["weights"],
        seed=job["seed"],
        device=job["device"],
        value_ranges=job["value_ranges"],
        registration=job["registration"],
    )


def _value_range(layer, data: np.ndarray, role: str) -> tuple[float, float] | None:
    """``uint8`` is divided by 255 (None); any other type is scaled by the contrast limits."""
    return None if data.dtype == np.uint8 else contrast_range(layer, role)


class CompareWidget(DockWidget):
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

    _user_errors = USER_AND_FILE_ERRORS
    _cancelling_text = "cancelling: stops after the current method"
    _cancelled_text = "cancelled: the layers added so far stay"

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, button="Run", start=self.run, task="comparison")
        #: The result layers of the last completed run, in method order.
        self.last_layers: list = []
        #: The metric rows of the last completed run (one per method, then the means).
        self.last_rows: list[dict[str, Any]] = []

        self.methods = Select(label="methods", choices=tuple(METHODS), value=list(DEFAULT_METHODS))
        self.methods.native.setMinimumHeight(150)
        self.weights = ComboBox(label="weights", choices=_WEIGHTS_CHOICES, value="imagenet")
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.device = ComboBox(label="device", choices=device_choices(), value="auto")
        self.run_button = self.action_button
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
        self._follow_layers()

    def _on_weights_mode(self, *_: Any) -> None:
        self.seed.visible = self.weights.value == "random"

    # --- running (is_running, Run↔Cancel, cancel(), progress: see DockWidget) ----------------
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
        # The layer-transform rule of the fusion widget: same shape and transform, pixel for
        # pixel; else the infrared resampled onto the visible layer's grid.
        registration = layer_registration(ir_layer, vis_layer)
        return {
            "registration": registration,
            "infrared": arrays[0],
            "visible": arrays[1],
            "value_ranges": (
                _value_range(ir_layer, arrays[0], "infrared"),
                _value_range(vis_layer, arrays[1], "visible"),
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
        if self._refused("a comparison is"):
            return None
        try:
            job = self._job()
        except USER_AND_FILE_ERRORS as exc:
            self._show_user_error(exc)
            return None
        added: list = []
        methods = job["methods"]
        return self._start_run(
            _compare_steps(job),
            yielded=lambda result: self._on_result(result, job, added),
            returned=lambda rows: self._on_returned(rows, job, added),
            status=f"fusing with {methods[0]}…",
            total=len(methods),
        )

    def _on_result(self, result: MethodResult, job: dict[str, Any], added: list) -> None:
        on_grid = grid_layer(*job["layers"], job["registration"])
        data = method_layer_data(result.fused, result.method, on_grid, job["names"], result.metrics)
        added.extend(add_or_update_layers(self._viewer, [data]))
        done = len(added)
        self._set_progress(done)
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
