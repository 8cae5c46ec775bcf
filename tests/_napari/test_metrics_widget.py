"""The "Fusion metrics" widget in a real viewer, and store_metrics_in_metadata.

Every expected value comes from :func:`napari_resfuse.metrics.compute_metrics` on the same
arrays (the metrics themselves are tested in tests/metrics/); the best marks are worked out
here from :data:`DIRECTIONS` with plain max/min.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from napari_resfuse._napari._metrics_widget import MetricsWidget, store_metrics_in_metadata
from napari_resfuse.metrics import DIRECTIONS, METRIC_NAMES, compute_metrics
from tests.conftest import textured_pair

TIMEOUT_MS = 60_000


def _average(ir, vis):
    return ((ir.astype(np.uint16) + vis) // 2).astype(np.uint8)


@pytest.fixture
def pair():
    return textured_pair()  # 64 x 96 uint8


@pytest.fixture
def widget(viewer):
    inner = MetricsWidget(viewer)
    viewer.window.add_dock_widget(inner, name="Fusion metrics")
    return inner


def _run(qtbot, widget):
    worker = widget.compute()
    assert worker is not None
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    return worker


def _by_severity(notifications, severity):
    return [n for n in notifications if str(n.severity) == severity]


def _cell(widget, row, col):
    return widget.table.item(row, col)


def test_table_equals_compute_metrics_and_marks_the_best(
    qtbot, viewer, widget, pair, notifications
):
    ir, vis = pair
    ir_layer, vis_layer = viewer.add_image(ir, name="ir"), viewer.add_image(vis, name="vis")
    avg_layer = viewer.add_image(_average(ir, vis), name="average")
    copy_layer = viewer.add_image(ir.copy(), name="ir copy")  # SCD is undefined for it
    assert widget.infrared_layer.value is ir_layer and widget.visible_layer.value is vis_layer
    assert list(widget.fused_layers.value) == [avg_layer, copy_layer]
    assert list(widget.metrics.value) == list(METRIC_NAMES)  # all by default

    _run(qtbot, widget)

    n = len(METRIC_NAMES)
    assert widget.progress.max == widget.progress.value == 2 * n  # one step per layer x metric
    assert widget.table.rowCount() == 2 and widget.table.columnCount() == n
    headers = [widget.table.horizontalHeaderItem(c).text() for c in range(n)]
    assert headers[METRIC_NAMES.index("nabf")] == "nabf ↓"
    assert headers[METRIC_NAMES.index("qabf")] == "qabf ↑"
    rows = [widget.table.verticalHeaderItem(r).text() for r in range(2)]
    assert rows == ["average", "ir copy"]
    assert [row["method"] for row in widget.rows] == rows

    expected_avg = compute_metrics(ir, vis, _average(ir, vis))
    assert {k: widget.rows[0][k] for k in METRIC_NAMES} == expected_avg
    with pytest.raises(ValueError, match="scd is undefined"):
        compute_metrics(ir, vis, ir, names=["scd"])
    expected_copy = compute_metrics(ir, vis, ir, names=[m for m in METRIC_NAMES if m != "scd"])
    for name, value in expected_copy.items():
        assert widget.rows[1][name] == value
        assert _cell(widget, 1, METRIC_NAMES.index(name)).data(256) == value  # Qt.UserRole
    scd_copy = _cell(widget, 1, METRIC_NAMES.index("scd"))
    assert math.isnan(widget.rows[1]["scd"]) and scd_copy.text() == "n/a"
    assert "undefined" in scd_copy.toolTip()
    (warning,) = _by_severity(notifications, "warning")
    assert "scd of 'ir copy'" in warning.message
    assert not _by_severity(notifications, "error")

    # bold = the best of the two per metric, by the metric's direction; NaN is never best
    for col, name in enumerate(METRIC_NAMES):
        values = [widget.rows[r][name] for r in range(2)]
        finite = [v for v in values if not math.isnan(v)]
        target = max(finite) if DIRECTIONS[name] == "higher" else min(finite)
        bold = [_cell(widget, r, col).font().bold() for r in range(2)]
        assert bold == [v == target for v in values], name
    # nabf is lower-is-better: the copy of a source adds no artefacts, so it wins there
    assert _cell(widget, 1, METRIC_NAMES.index("nabf")).font().bold()
    assert not _cell(widget, 1, METRIC_NAMES.index("entropy")).font().bold()
    assert "on the whole images" in widget.caption.value


def test_export_csv_writes_the_rows(qtbot, viewer, widget, pair, tmp_path, notifications):
    ir, vis = pair
    viewer.add_image(ir, name="ir")
    viewer.add_image(vis, name="vis")
    viewer.add_image(_average(ir, vis), name="average")
    viewer.add_image(np.maximum(ir, vis), name="max")
    assert widget.export_csv(tmp_path / "none.csv") is None  # nothing computed yet
    assert not (tmp_path / "none.csv").exists()
    widget.metrics.value = ["psnr", "entropy"]
    _run(qtbot, widget)
    assert widget.export_button.enabled

    path = widget.export_csv(tmp_path / "metrics.csv")
    with path.open(newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == ["pair", "method", "entropy", "psnr"]  # table order, not pick order
    assert [line[:2] for line in lines[1:]] == [["ir + vis", "average"], ["ir + vis", "max"]]
    for line, fused in zip(lines[1:], [_average(ir, vis), np.maximum(ir, vis)], strict=True):
        expected = compute_metrics(ir, vis, fused, names=["entropy", "psnr"])
        assert [float(x) for x in line[2:]] == [expected["entropy"], expected["psnr"]]


def test_shape_mismatch_is_a_notification_and_no_rows(viewer, widget, pair, notifications):
    ir, vis = pair
    viewer.add_image(ir, name="ir")
    viewer.add_image(vis, name="vis")
    viewer.add_image(_average(ir, vis)[:, :80], name="cropped")
    assert widget.compute() is None
    (error,) = _by_severity(notifications, "error")
    assert "'ir'" in error.message and "'cropped'" in error.message
    assert "64 x 80" in error.message
    assert "Traceback" not in error.message
    assert widget.table.rowCount() == 0 and widget.rows == [] and not widget.is_running


def test_float_layers_use_contrast_limits_on_the_displayed_plane(
    qtbot, viewer, widget, notifications
):
    pairs = [textured_pair(seed=s) for s in range(3)]
    ir = np.stack([p[0] for p in pairs])
    vis = np.stack([p[1] for p in pairs])
    average = _average(ir, vis)
    viewer.add_image(ir, name="ir")
    viewer.add_image(vis, name="vis")
    # float data in [0, 2] shown through contrast limits (0, 2): the metrics must see
    # round(255 * x / 2) = the uint8 average, not the data rescaled by its own min and max
    scaled = viewer.add_image(average / 255.0 * 2.0, name="scaled", contrast_limits=(0, 2))
    viewer.add_image(vis.astype(np.uint16) * 100, name="vis x100", contrast_limits=(0, 25500))
    widget.fused_layers.value = [scaled, viewer.layers["vis x100"]]
    widget.metrics.value = ["std", "psnr", "cc"]
    viewer.dims.set_current_step(0, 1)

    _run(qtbot, widget)

    expected = compute_metrics(ir[1], vis[1], average[1], names=["std", "psnr", "cc"])
    assert {k: widget.rows[0][k] for k in expected} == expected
    expected_vis = compute_metrics(ir[1], vis[1], vis[1], names=["std", "psnr", "cc"])
    assert {k: widget.rows[1][k] for k in expected_vis} == expected_vis
    # the metrics refuse floats outside [0, 1]: the contrast limits make this plane measurable
    with pytest.raises(ValueError, match=r"float images must lie in \[0, 1\]"):
        compute_metrics(ir[1], vis[1], average[1] / 255.0 * 2.0, names=["std"])
    assert widget.rows[0]["pair"] == "ir + vis (axis 0=1)"
    assert "displayed plane axis 0=1" in widget.caption.value

    viewer.dims.ndisplay = 3
    assert widget.compute() is None
    assert "2-D" in _by_severity(notifications, "error")[-1].message


def test_cancel_shows_nothing(qtbot, viewer, widget, pair):
    ir, vis = pair
    viewer.add_image(ir, name="ir")
    viewer.add_image(vis, name="vis")
    viewer.add_image(_average(ir, vis), name="average")
    worker = widget.compute()
    assert widget.compute() is None  # refused while running
    assert widget.compute_button.text == "Cancel"
    widget.compute_button.native.click()  # the button cancels while running
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)
    assert worker.abort_requested
    assert widget.rows == [] and widget.table.rowCount() == 0
    assert "cancelled" in widget.status.value and widget.compute_button.text == "Compute"
    assert not widget.export_button.enabled


def test_layer_lists_follow_add_remove_rename(viewer, widget):
    assert widget.infrared_layer.choices == (None,) and widget.fused_layers.choices == ()
    camera = viewer.add_image(np.zeros((8, 8), np.uint8), name="camera")
    thermal = viewer.add_image(np.zeros((8, 8), np.uint8), name="thermal")
    fused = viewer.add_image(np.zeros((8, 8), np.uint8), name="my fusion")
    viewer.add_labels(np.zeros((8, 8), np.uint8), name="mask")  # not an Image: not offered
    assert set(widget.infrared_layer.choices) - {None} == {camera, thermal, fused}
    assert set(widget.fused_layers.choices) == {camera, thermal, fused}
    assert widget.infrared_layer.value is thermal  # guessed from the name
    assert list(widget.fused_layers.value) == [fused]  # neither source

    fused.name = "renamed fusion"
    items = [widget.fused_layers.native.item(i).text() for i in range(3)]
    assert "renamed fusion" in items and "my fusion" not in items
    assert list(widget.fused_layers.value) == [fused]

    widget.fused_layers.value = [fused, camera]  # the user's pick is kept ...
    other = viewer.add_image(np.zeros((8, 8), np.uint8), name="other")
    assert list(widget.fused_layers.value) == [camera, fused]
    viewer.layers.remove(camera)  # ... while its layers exist
    assert list(widget.fused_layers.value) == [fused]
    assert set(widget.visible_layer.choices) - {None} == {thermal, fused, other}


def test_plugin_outputs_are_offered_with_their_sources(viewer, widget):
    from napari_resfuse._napari.layers import MARKER  # the fusion widget's output marker

    image = np.zeros((8, 8), np.uint8)
    right, left = viewer.add_image(image, name="right"), viewer.add_image(image, name="left")
    for output in ("fused", "weights"):
        marker = {"key": output, "output": output, "infrared": "left", "visible": "right"}
        viewer.add_image(image, name=f"{output} [left + right]", metadata={MARKER: marker})
    # names give no hint; the fused output's marker names its sources
    assert widget.infrared_layer.value is left and widget.visible_layer.value is right
    assert list(widget.fused_layers.value) == [viewer.layers["fused [left + right]"]]


def test_store_metrics_in_metadata(viewer, pair):
    ir, vis = pair
    ir_layer, vis_layer = viewer.add_image(ir, name="ir"), viewer.add_image(vis, name="vis")
    fused = viewer.add_image(_average(ir, vis), name="fused", metadata={"params": {"a": 1}})
    values = store_metrics_in_metadata(fused, ir_layer, vis_layer)
    assert values == compute_metrics(ir, vis, _average(ir, vis))
    assert fused.metadata["metrics"] is values and fused.metadata["params"] == {"a": 1}
    np.testing.assert_array_equal(fused.data, _average(ir, vis))

    with pytest.warns(RuntimeWarning, match="scd of 'copy' is undefined"):
        values = store_metrics_in_metadata(
            viewer.add_image(ir.copy(), name="copy"), ir_layer, vis_layer, names=["scd", "std"]
        )
    assert list(values) == ["std", "scd"] and math.isnan(values["scd"])

    # stacks: each metric's mean over the planes
    pairs = [textured_pair(seed=s) for s in (1, 2)]
    irs, viss = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    layers = [viewer.add_image(a) for a in (irs, viss, _average(irs, viss))]
    values = store_metrics_in_metadata(layers[2], layers[0], layers[1], names=["std", "cc"])
    planes = [compute_metrics(i, v, _average(i, v), names=["std", "cc"]) for i, v in pairs]
    assert values == pytest.approx({k: (planes[0][k] + planes[1][k]) / 2 for k in values})

    with pytest.raises(ValueError, match="differ in shape"):
        store_metrics_in_metadata(fused, layers[0], vis_layer)
