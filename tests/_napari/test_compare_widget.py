"""The "Compare methods" widget in a real viewer: result layers, grid mode with the sources first,
the metrics table, re-runs, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from napari_resfuse._napari._compare_widget import CompareWidget, arrange_grid, result_name
from napari_resfuse.compare import DEFAULT_METHODS, iter_compare_arrays
from napari_resfuse.metrics import DIRECTIONS

from .conftest import RUN_TIMEOUT_MS

METHODS = ["average", "two_scale_max", "gff"]


def _grid(viewer):
    return viewer.canvas.grid if hasattr(viewer, "canvas") else viewer.grid


def _grid_cell(viewer, layer):
    layers = viewer.layers
    return tuple(_grid(viewer).position(layers.index(layer), layers))


@pytest.fixture
def compare_widget(viewer):
    widget = CompareWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Compare methods")
    return widget


def _run(qtbot, widget):
    worker = widget.run()
    assert worker is not None
    qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
    return worker


def test_defaults_and_layer_guess(viewer, small_layers, compare_widget):
    ir, vis = small_layers
    assert compare_widget.infrared_layer.value is ir
    assert compare_widget.visible_layer.value is vis
    assert tuple(compare_widget.methods.value) == DEFAULT_METHODS
    assert compare_widget.weights.value == "imagenet"
    assert not _grid(viewer).enabled


def test_run_adds_a_layer_per_method_and_shows_the_grid(
    qtbot, viewer, small_layers, compare_widget
):
    ir, vis = small_layers
    viewer.add_image(np.zeros((64, 96)), name="other")
    compare_widget.methods.value = METHODS
    _run(qtbot, compare_widget)

    names = [result_name(m, "ir", "vis") for m in METHODS]
    assert [layer.name for layer in compare_widget.last_layers] == names
    for name, method in zip(names, METHODS, strict=True):
        layer = viewer.layers[name]
        assert layer.data.shape == (64, 96) and layer.data.dtype == np.uint8
        assert layer.metadata["napari_resfuse"]["method"] == method
    # Grid mode, the sources in the first cells, then the methods in the order chosen.
    assert _grid(viewer).enabled
    cells = [_grid_cell(viewer, layer) for layer in [ir, vis, *compare_widget.last_layers]]
    n_columns = _grid(viewer).actual_shape(viewer.layers)[1]
    assert [row * n_columns + col for row, col in cells] == list(range(5))
    assert _grid_cell(viewer, viewer.layers["other"]) == divmod(5, n_columns)

    # The table: a row per metric with its direction, a column per method, values that match.
    table = compare_widget.table
    assert list(table.column_headers) == METHODS
    assert tuple(table.row_headers[:1]) == ("entropy ↑",)
    assert "nabf ↓" in table.row_headers
    runner = iter_compare_arrays(ir.data, vis.data, METHODS)
    expected = {result.method: result.metrics for result in runner}
    nabf = list(table.row_headers).index("nabf ↓")
    for column, method in enumerate(METHODS):
        assert float(table.data[nabf][column]) == pytest.approx(expected[method]["nabf"], abs=1e-4)
    best = min(METHODS, key=lambda m: expected[m]["nabf"])
    assert DIRECTIONS["nabf"] == "lower"
    assert table.native.item(nabf, METHODS.index(best)).font().bold()
    assert not table.native.item(nabf, METHODS.index("two_scale_max")).font().bold()
    assert "done: 3 method(s)" in compare_widget.status.value


def test_a_second_run_updates_the_same_layers(qtbot, viewer, small_layers, compare_widget):
    compare_widget.methods.value = ["average"]
    _run(qtbot, compare_widget)
    first = compare_widget.last_layers[0]
    n_layers = len(viewer.layers)
    _run(qtbot, compare_widget)
    assert compare_widget.last_layers[0] is first
    assert len(viewer.layers) == n_layers


def test_network_method_with_random_weights(qtbot, viewer, small_layers, compare_widget):
    compare_widget.methods.value = ["resnet50_zca"]
    assert compare_widget.seed.native.isHidden()  # the seed matters to random weights only
    compare_widget.weights.value = "random"
    assert not compare_widget.seed.native.isHidden()
    _run(qtbot, compare_widget)
    layer = viewer.layers[result_name("resnet50_zca", "ir", "vis")]
    assert layer.data.shape == (64, 96)
    assert "random weights" in compare_widget.status.value


def test_bad_choices_are_refused_with_a_notification(viewer, small_layers, compare_widget):
    from napari.utils.notifications import notification_manager

    received = []
    notification_manager.notification_ready.connect(received.append)
    try:
        compare_widget.methods.value = []
        assert compare_widget.run() is None
        compare_widget.methods.value = ["average"]
        compare_widget.visible_layer.value = compare_widget.infrared_layer.value
        assert compare_widget.run() is None
    finally:
        notification_manager.notification_ready.disconnect(received.append)
    messages = [str(n.message) for n in received]
    assert any("at least one method" in m for m in messages)
    assert any("two different layers" in m for m in messages)
    assert not compare_widget.is_running


def test_non_uint8_layers_are_scaled_by_their_contrast_limits(qtbot, viewer, compare_widget):
    from tests.conftest import textured_pair

    ir, vis = textured_pair()
    ir_layer = viewer.add_image(ir.astype(np.float32) * 4.0, name="ir", contrast_limits=(0, 1020))
    vis_layer = viewer.add_image(vis.astype(np.uint16), name="vis", contrast_limits=(0, 255))
    compare_widget.infrared_layer.value, compare_widget.visible_layer.value = ir_layer, vis_layer
    compare_widget.methods.value = ["average"]
    _run(qtbot, compare_widget)
    fused = compare_widget.last_layers[0].data
    assert fused.dtype == np.float32
    np.testing.assert_allclose(fused, (ir / 255.0 + vis / 255.0) / 2, atol=1e-6)


def test_arrange_grid_puts_the_given_layers_first(viewer):
    layers = [viewer.add_image(np.full((8, 8), k, np.uint8), name=f"l{k}") for k in range(4)]
    order = [layers[3], layers[1], layers[0]]
    arrange_grid(viewer, order)
    assert _grid(viewer).enabled
    n_columns = _grid(viewer).actual_shape(viewer.layers)[1]
    cells = [_grid_cell(viewer, layer) for layer in order]
    assert [row * n_columns + col for row, col in cells] == [0, 1, 2]


def test_the_plugin_menu_docks_the_widget(viewer, small_layers):
    # As Plugins > napari-resfuse > Compare methods does (the napari.yaml contribution).
    _dock, inner = viewer.window.add_plugin_dock_widget("napari-resfuse", "Compare methods")
    assert isinstance(inner, CompareWidget)
    assert inner.infrared_layer.value is small_layers[0]


def test_layers_that_differ_in_shape_and_transform_are_compared_on_the_visible_grid(
    qtbot, viewer, compare_widget
):
    # The fusion widget's layer-transform rule: an infrared layer at half the resolution,
    # scaled by 2 in the world, is resampled onto the visible layer's grid.
    from napari_resfuse._napari._alignment import registration_from_layers
    from tests.conftest import textured_pair

    ir, vis = textured_pair()
    ir_small = ir[::2, ::2].copy()
    ir_layer = viewer.add_image(ir_small, name="ir", scale=(2, 2))
    vis_layer = viewer.add_image(vis, name="vis", scale=(1, 1), translate=(0, 0))
    before = ir_small.copy()
    compare_widget.infrared_layer.value, compare_widget.visible_layer.value = ir_layer, vis_layer
    compare_widget.methods.value = ["average"]
    _run(qtbot, compare_widget)
    (layer,) = compare_widget.last_layers
    assert layer.data.shape == vis.shape
    np.testing.assert_allclose(layer.scale, vis_layer.scale)
    registration = registration_from_layers(ir_layer, vis_layer)
    gen = iter_compare_arrays(ir_small, vis, ["average"], registration=registration)
    expected = next(gen).fused
    np.testing.assert_array_equal(layer.data, expected)
    np.testing.assert_array_equal(ir_layer.data, before)  # the input layer is untouched


def test_same_shape_but_shifted_layers_are_not_compared_pixel_for_pixel(
    qtbot, viewer, compare_widget
):
    from tests.conftest import textured_pair

    ir, vis = textured_pair()
    ir_layer = viewer.add_image(ir, name="ir", translate=(0, 10))
    vis_layer = viewer.add_image(vis, name="vis")
    compare_widget.infrared_layer.value, compare_widget.visible_layer.value = ir_layer, vis_layer
    compare_widget.methods.value = ["average"]
    _run(qtbot, compare_widget)
    fused = compare_widget.last_layers[0].data.astype(float)
    pixel_for_pixel = (ir.astype(float) + vis.astype(float)) / 2
    assert not np.allclose(fused, pixel_for_pixel, atol=1.0)
    # Column 20 of the visible frame sees infrared column 10 (the infrared starts 10 px right).
    expected = (ir[:, 10].astype(float) + vis[:, 20].astype(float)) / 2
    np.testing.assert_allclose(fused[:, 20], expected, atol=1.0)
