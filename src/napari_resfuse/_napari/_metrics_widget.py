"""The "Fusion metrics" dock widget: a table of the metrics of fused layers.

Choose the sources and fused layers and the metrics; a thread worker runs
:func:`~napari_resfuse._napari._metrics_job.metric_steps` (one fused layer and one metric at
a time) and each value fills its cell of the dock's table as it comes (rows: fused layers,
columns: metrics, best value per metric in bold); "Export CSV…" writes the rows with
:func:`napari_resfuse.metrics.write_csv`. How layers become the images the metrics see, and
:func:`store_metrics_in_metadata`, are in :mod:`~napari_resfuse._napari._metrics_job`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import napari
from magicgui.widgets import Label, PushButton, Select
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QFileDialog, QTableWidget, QTableWidgetItem
from superqt.utils import GeneratorWorker

from ..metrics import DIRECTIONS, METRIC_NAMES, best_cells, write_csv
from ._dock import DockWidget, guess_sources, is_fused_output
from ._metrics_job import (
    MetricsJob,
    MetricValue,
    metric_steps,
    metrics_input,
    prepare_metrics_job,
    store_metrics_in_metadata,
)

__all__ = [
    "MetricsJob",
    "MetricsWidget",
    "metrics_input",
    "prepare_metrics_job",
    "store_metrics_in_metadata",
]

#: Header arrows: which way each metric is better.
ARROWS = {"higher": "↑", "lower": "↓"}


def _metric_choices() -> list[tuple[str, str]]:
    """The metrics offered, in table order, each shown with its direction (``↑``/``↓``)."""
    return [(f"{name} {ARROWS[DIRECTIONS[name]]}", name) for name in METRIC_NAMES]


def _format_value(value: float) -> str:
    """Four decimals; small values (Nabf) in scientific notation; NaN (undefined) as n/a."""
    if math.isnan(value):
        return "n/a"
    if not math.isfinite(value):  # PSNR of images equal to both sources
        return str(value)
    if value == 0 or abs(value) >= 1e-3:
        return f"{value:.4f}"
    return f"{value:.3e}"


class MetricsWidget(DockWidget):
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

    _cancelling_text = "cancelling: stops after the current metric"
    _cancelled_text = "cancelled: nothing computed"

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, button="Compute", start=self.compute, task="metrics")
        self._started = 0.0
        self._reasons: list[str] = []
        self._columns: tuple[str, ...] = ()  # the metrics of the table shown
        #: The rows of the last completed run, as :func:`~napari_resfuse.metrics.metrics_table`
        #: gives them (``pair``, ``method`` = fused layer name, one key per metric).
        self.rows: list[dict[str, Any]] = []
        #: The metrics of the last completed run, in table order.
        self.result_names: tuple[str, ...] = ()

        self.fused_layers = Select(label="fused", choices=self._image_layers)
        self.fused_layers.native.setMaximumHeight(110)
        self.metrics = Select(label="metrics", choices=_metric_choices(), value=list(METRIC_NAMES))
        self.metrics.native.setMaximumHeight(140)
        self.compute_button = self.action_button
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
        self._add_picker(self.fused_layers)
        self._follow_layers()

    # --- layer choices ---------------------------------------------------------------------
    def _guess_choices(self, layers: list, infrared: Any, visible: Any, *more: Any) -> tuple:
        """The sources as :func:`~napari_resfuse._napari._dock.guess_sources` guesses them;
        the fused layers are this plugin's fused outputs, or else every layer that is neither
        source."""
        (fused,) = more
        infrared, visible = guess_sources(layers, infrared, visible)
        if not fused:
            fused = [lay for lay in layers if is_fused_output(lay)] or [
                lay for lay in layers if lay is not infrared and lay is not visible
            ]
        return infrared, visible, fused

    # --- running (is_running, Compute↔Cancel, cancel(), progress: see DockWidget) ----------
    def compute(self) -> GeneratorWorker | None:
        """Start computing in a thread worker; returns the worker, or None if none started.

        Bad choices (no fused layer, shapes that differ, a 3-D view, ...) are reported as a
        notification, clear the table and start nothing; so is a second run while one runs.
        """
        if self._refused("the metrics computation is"):
            return None
        try:
            job = prepare_metrics_job(
                self._viewer,
                self.infrared_layer.value,
                self.visible_layer.value,
                list(self.fused_layers.value),
                names=list(self.metrics.value),
            )
        except ValueError as exc:
            self._clear_table()
            self.status.value = "nothing computed"
            self._show_user_error(exc)
            return None

        self._show_empty_table(job)
        self._reasons, self._started = [], time.perf_counter()
        return self._start_run(
            metric_steps(job),
            yielded=self._on_value,
            returned=lambda rows: self._on_returned(rows, job),
            status=f"computing {len(job.names)} metrics of {len(job.fused)} layer(s)…",
            total=len(job.fused) * len(job.names),
        )

    def _on_value(self, cell: MetricValue) -> None:
        self._set_progress(self.progress.value + 1)
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
