"""The "Fuse infrared + visible" widget in a real viewer: choices, options, runs in a thread
worker (progress, responsiveness, cancel, refusal, errors)."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch
from napari.utils.notifications import ErrorNotification
from qtpy.QtCore import QTimer

from napari_resfuse import LEVELS, FusionOptions, fuse
from napari_resfuse._napari._widget import FusionWidget, device_choices

from .conftest import wait_for_run

SAMPLE_NAMES = [
    "fused [infrared + visible]",
    "base [infrared]",
    "base [visible]",
    "detail [infrared]",
    "detail [visible]",
    "weights [infrared]",
    "weights [visible]",
    "winning level [infrared]",
    "winning level [visible]",
]


def _shown(field):
    # not hidden by the widget (``visible`` is False anyway while the viewer window is hidden)
    return not field.native.isHidden()


def _record_progress(widget, ticks=()):
    """The status text at each progress report (main thread), with the tick count then."""
    seen = []
    widget.progressed.connect(lambda _: seen.append((widget.status.value, len(ticks))))
    return seen


def _errors(notifications):
    return [n for n in notifications if str(n.severity) == "error"]


def test_docked_widget_reads_its_defaults_from_fusion_options(widget):
    assert isinstance(widget, FusionWidget)
    defaults = FusionOptions()
    assert widget.get_options() == defaults
    assert widget.kernel_size.value == defaults.kernel_size
    assert (widget.infrared_base.value, widget.visible_base.value) == defaults.base_weights
    assert tuple(widget.levels.value) == defaults.layers == LEVELS
    assert widget.weights.value == "imagenet"
    assert widget.device.choices == tuple(device_choices())
    assert widget.run_button.text == "Run"


def test_widget_made_directly_lists_image_layers(viewer, small_layers):
    widget = FusionWidget(viewer)  # not through napari's plugin proxy
    assert (widget.infrared_layer.value, widget.visible_layer.value) == small_layers


def test_options_round_trip(widget, tmp_path):
    path = tmp_path / "my.pth"
    opts = FusionOptions(
        weights=str(path),
        kernel_size=15,
        base_weights=(0.5, 0.5),
        layers=("conv1", "conv3_1"),
        norm="l2",
        batch_size=2,
    )
    widget.set_options(opts)
    assert widget.weights.value == "file" and _shown(widget.weights_file)
    assert widget.get_options() == opts
    widget.set_options(weights="random", seed=7)
    assert _shown(widget.seed) and not _shown(widget.weights_file)
    assert widget.get_options() == opts.replace(weights="random", seed=7)


def test_layer_choices_follow_add_remove_rename(viewer, widget):
    assert widget.infrared_layer.choices == (None,)
    vis = viewer.add_image(np.zeros((40, 40)), name="camera")
    ir = viewer.add_image(np.zeros((40, 40)), name="thermal")
    viewer.add_labels(np.zeros((40, 40), np.uint8), name="mask")  # not an Image: not offered
    assert set(widget.infrared_layer.choices) - {None} == {vis, ir}
    assert (
        widget.infrared_layer.value is ir and widget.visible_layer.value is vis
    )  # guessed from names

    ir.name = "LWIR"
    assert "LWIR" in [
        widget.infrared_layer.native.itemText(i) for i in range(len(widget.infrared_layer))
    ]
    assert widget.infrared_layer.value is ir  # the choice survives the rename

    viewer.layers.remove(vis)
    assert set(widget.visible_layer.choices) - {None} == {ir}


def test_widget_runs_end_to_end_on_the_sample(qtbot, viewer, widget):
    viewer.open_sample("napari-resfuse", "street")
    ir_layer, vis_layer = viewer.layers["infrared"], viewer.layers["visible"]
    # One transform on both layers (issue 12: differing transforms would resample the infrared
    # layer): the pair is fused pixel for pixel and the outputs take that transform.
    ir_layer.scale = vis_layer.scale = (0.5, 0.5)
    ir_before, vis_before = ir_layer.data.copy(), vis_layer.data.copy()
    assert widget.infrared_layer.value is ir_layer and widget.visible_layer.value is vis_layer
    widget.set_options(weights="random", seed=0)
    for box in widget.outputs.values():
        box.value = True

    # The event loop must keep running during the fusion: count timer ticks, and when
    # progress reports arrive, while the worker runs.
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(widget.is_running))
    seen = _record_progress(widget, ticks)
    timer.start()
    widget.run_button.native.click()
    assert widget.is_running and widget.run_button.text == "Cancel"
    wait_for_run(qtbot, widget)
    timer.stop()

    ticks_while_running = sum(ticks)
    print(f"\nevent loop: {ticks_while_running} timer ticks of 10 ms while the fusion ran")
    assert ticks_while_running >= 3
    assert [text for text, _ in seen] == [
        "load model (1/5)",
        "decompose (2/5)",
        "features (3/5)",
        "weights (4/5)",
        "reconstruct (5/5)",
    ]
    assert seen[-1][1] > seen[0][1]  # ticks between the first and the last progress report
    assert widget.run_button.text == "Run" and not _shown(widget.progress)

    names = [layer.name for layer in viewer.layers]
    assert names == ["visible", "infrared", *SAMPLE_NAMES]
    expected = fuse(ir_before, vis_before, weights="random", seed=0)
    for layer in widget.last_layers:
        assert layer.data.shape[-2:] == (240, 320)
        np.testing.assert_allclose(layer.scale[-2:], (0.5, 0.5))
        assert layer.metadata["params"]["weights_id"] == "random:seed=0"
        assert layer.metadata["params"]["input_shapes"]["infrared"] == [240, 320]
    np.testing.assert_array_equal(viewer.layers[SAMPLE_NAMES[0]].data, expected.fused)
    assert viewer.layers["weights [visible]"].data.shape == (len(LEVELS) + 1, 240, 320)
    np.testing.assert_array_equal(ir_layer.data, ir_before)
    np.testing.assert_array_equal(vis_layer.data, vis_before)
    assert "random weights" in widget.status.value


def test_widget_rerun_updates_in_place(qtbot, viewer, small_layers, widget):
    widget.set_options(weights="random")
    widget.run()
    wait_for_run(qtbot, widget)
    first = list(widget.last_layers)
    assert [lay.name for lay in first] == ["fused [ir + vis]", "weights [ir]", "weights [vis]"]

    widget.kernel_size.value = 9
    widget.run()
    wait_for_run(qtbot, widget)
    assert len(viewer.layers) == 5
    assert all(a is b for a, b in zip(first, widget.last_layers, strict=True))
    assert first[0].metadata["params"]["kernel_size"] == 9


def test_stack_progress_counts_planes(qtbot, viewer, widget):
    from tests.conftest import textured_pair

    pairs = [textured_pair(seed=s) for s in range(3)]
    viewer.add_image(np.stack([p[0] for p in pairs]), name="ir")
    viewer.add_image(np.stack([p[1] for p in pairs]), name="vis")
    widget.set_options(weights="random", batch_size=1)
    seen = _record_progress(widget)
    widget.run()
    wait_for_run(qtbot, widget)
    texts = [text for text, _ in seen]
    assert len(texts) == 1 + 4 * 3  # load model, then four stages per plane
    assert texts[0].startswith("load model (1/13)")
    assert texts[-1] == "reconstruct (13/13), planes 3/3"
    assert viewer.layers["fused [ir + vis]"].data.shape == (3, 64, 96)


def test_cancel_adds_no_layers(qtbot, viewer, widget):
    viewer.open_sample("napari-resfuse", "street")
    widget.set_options(weights="random")
    seen = _record_progress(widget)

    def cancel_at_first_stage(progress):
        if progress.step == 1:
            widget.run_button.native.click()  # the button reads "Cancel" while running

    widget.progressed.connect(cancel_at_first_stage)
    widget.run()
    wait_for_run(qtbot, widget)

    stages = [text.split(" (")[0] for text, _ in seen]
    assert stages[0] == "load model" and "reconstruct" not in stages
    assert [layer.name for layer in viewer.layers] == ["visible", "infrared"]
    assert widget.last_layers == []
    assert "cancelled" in widget.status.value and widget.run_button.text == "Run"


def test_second_run_is_refused_while_running(qtbot, viewer, small_layers, widget, notifications):
    widget.set_options(weights="random")
    worker = widget.run()
    assert worker is not None
    assert widget.run() is None
    assert any("already running" in n.message for n in notifications)
    wait_for_run(qtbot, widget)
    assert [lay.name for lay in viewer.layers].count("fused [ir + vis]") == 1


def test_engine_error_is_a_notification_and_adds_nothing(
    qtbot, viewer, small_layers, widget, notifications, tmp_path
):
    missing = tmp_path / "no such weights.pth"
    widget.set_options(weights=str(missing))
    assert widget.run() is not None  # the file is only opened in the worker
    wait_for_run(qtbot, widget)
    errors = _errors(notifications)
    assert len(errors) == 1
    assert "does not exist" in errors[0].message and "no such weights.pth" in errors[0].message
    assert not isinstance(errors[0], ErrorNotification)  # a message, not a traceback
    assert [lay.name for lay in viewer.layers] == ["ir", "vis"]
    assert widget.run_button.text == "Run"


def test_offline_imagenet_weights_give_the_engines_instructions(
    qtbot, viewer, small_layers, widget, notifications, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    assert widget.get_options().weights == "imagenet"  # the default
    widget.run()
    wait_for_run(qtbot, widget)
    (error,) = _errors(notifications)
    assert "could not be downloaded" in error.message
    assert "resnet152-394f9c45.pth" in error.message
    assert not isinstance(error, ErrorNotification)
    assert len(viewer.layers) == 2


def test_option_warnings_are_notifications(qtbot, viewer, small_layers, widget, notifications):
    widget.set_options(weights="random")
    widget.infrared_base.value = 0.7  # with 0.4: sums to 1.1
    assert widget.run() is not None
    wait_for_run(qtbot, widget)
    warnings = [n for n in notifications if str(n.severity) == "warning"]
    assert len(warnings) == 1 and "do not sum to 1" in warnings[0].message
    assert viewer.layers["fused [ir + vis]"].metadata["params"]["base_weights"] == [0.7, 0.4]


def test_bad_layers_are_a_notification_and_start_nothing(viewer, widget, notifications):
    viewer.add_image(np.zeros((64, 96), np.uint8), name="thermal")
    viewer.add_image(np.zeros((64, 80), np.uint8), name="camera")
    assert widget.run() is None
    (error,) = _errors(notifications)
    assert "'thermal'" in error.message and "'camera'" in error.message
    assert len(viewer.layers) == 2 and not widget.is_running


@pytest.mark.parametrize("bad", [{"levels": []}, {"weights_file": ""}])
def test_bad_options_are_a_notification(viewer, small_layers, widget, notifications, bad):
    if "levels" in bad:
        widget.levels.value = []
    else:
        widget.weights.value = "file"
    assert widget.run() is None
    (error,) = _errors(notifications)
    assert ("layers must be" in error.message) or ("weights file" in error.message)


def test_store_metrics_puts_them_in_the_fused_layers_metadata(qtbot, viewer, small_layers, widget):
    from napari_resfuse.metrics import METRIC_NAMES

    widget.set_options(weights="random", layers=("conv1", "conv2_1"))
    widget.store_metrics.value = True
    widget.run()
    wait_for_run(qtbot, widget)
    fused = widget.last_layers[0]
    qtbot.waitUntil(lambda: "metrics" in fused.metadata, timeout=120_000)
    assert list(fused.metadata["metrics"]) == list(METRIC_NAMES)
    assert 0.0 < fused.metadata["metrics"]["ssim_sum"] <= 2.0


def test_backbone_and_variant_fields_drive_levels_and_runs(qtbot, viewer, small_layers, widget):
    widget.backbone.value = "vgg19"
    assert set(widget.levels.value) == set(FusionOptions(backbone="vgg19").layers)
    widget.backbone.value = "resnet152"
    widget.variant.value = "published-code"
    assert set(widget.levels.value) == set(FusionOptions(variant="published-code").layers)
    assert (widget.infrared_base.value, widget.visible_base.value) == (0.5, 0.5)
    widget.set_options(weights="random")
    opts = widget.get_options()
    assert (opts.backbone, opts.variant) == ("resnet152", "published-code")
    widget.run()
    wait_for_run(qtbot, widget)
    assert widget.last_layers[0].metadata["params"]["variant"] == "published-code"
    widget.variant.value = "paper"
    assert set(widget.levels.value) == set(LEVELS)
    assert (widget.infrared_base.value, widget.visible_base.value) == (0.6, 0.4)
