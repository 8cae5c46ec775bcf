"""The dock widgets' shared base: one report per error or warning, napari's activity dock,
cancel from there, layer guessing. Real superqt workers in a real viewer; the runs are small
generators written here, released step by step with events (no sleeps)."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from napari.utils.notifications import ErrorNotification

from napari_resfuse._napari._dock import DockWidget, guess_sources
from napari_resfuse._napari._layer_specs import MARKER

TIMEOUT_MS = 30_000


class _Runs(DockWidget):
    """A dock widget whose runs are the generators handed to :meth:`go`."""

    _cancelled_text = "cancelled here"

    def __init__(self, viewer):
        super().__init__(viewer, button="Go", start=lambda: None, task="test")
        self.extend([self.infrared_layer, self.visible_layer, self.action_button, self.progress])
        self.extend([self.status])
        self.items: list = []
        self.returned: list = []
        self._follow_layers()

    def go(self, runner, total=None):
        def on_item(item):
            self.items.append(item)
            self._set_progress(len(self.items), total)

        return self._start_run(runner, yielded=on_item, returned=self.returned.append, total=total)


@pytest.fixture
def runs(viewer):
    widget = _Runs(viewer)
    viewer.window.add_dock_widget(widget, name="runs")
    return widget


def _by_severity(notifications, severity):
    return [n for n in notifications if str(n.severity) == severity]


def _wait_idle(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.is_running, timeout=TIMEOUT_MS)


def _failing(exc):
    def run():
        warnings.warn("careful: this run warns once", UserWarning, stacklevel=1)
        yield 1
        raise exc

    return run()


@pytest.mark.parametrize(
    ("exc", "traceback"),
    [
        (ValueError("layer 'x' is empty"), False),  # meant for the user: one line
        (KeyError("a bug"), True),  # a bug: napari's notification with the traceback
        (RuntimeError("CUDA out of memory"), True),  # superqt alone would drop this one
    ],
)
def test_each_error_and_warning_is_reported_once(qtbot, runs, notifications, exc, traceback):
    runs.go(_failing(exc))
    _wait_idle(qtbot, runs)
    (error,) = _by_severity(notifications, "error")
    assert isinstance(error, ErrorNotification) is traceback
    assert str(exc).strip("'") in str(error.message)
    (warning,) = _by_severity(notifications, "warning")
    assert "careful: this run warns once" in warning.message
    assert runs.status.value == f"failed: {type(exc).__name__}"
    assert runs.action_button.text == "Go" and runs.action_button.enabled
    assert runs.items == [1] and runs.returned == []


def test_a_side_task_reports_once_too(qtbot, runs, notifications):
    def task():
        warnings.warn("side warning", RuntimeWarning, stacklevel=1)
        raise ValueError("side failure")

    worker = runs._start_task(task, returned=print, what="metrics")
    qtbot.waitUntil(lambda: not worker.is_running and len(notifications) >= 2, timeout=TIMEOUT_MS)
    assert [n.message for n in _by_severity(notifications, "error")] == [
        "napari-resfuse: metrics: side failure"
    ]
    assert [n.message for n in _by_severity(notifications, "warning")] == [
        "napari-resfuse: side warning"
    ]


def test_progress_shows_in_the_activity_dock_and_cancels_from_there(qtbot, runs):
    release, closed = threading.Event(), []

    def run():
        try:
            for step in range(1, 4):
                release.wait(TIMEOUT_MS / 1000)
                release.clear()
                yield step
            return "all done"
        finally:
            closed.append(True)

    runs.go(run(), total=3)
    activity = runs.activity
    assert activity is not None and activity.total == 3 and activity.n == 0
    assert runs.action_button.text == "Cancel" and runs.progress.max == 3
    release.set()
    qtbot.waitUntil(lambda: activity.n == 1, timeout=TIMEOUT_MS)
    assert runs.progress.value == 1

    activity.cancel()  # what the activity dock's Cancel button calls
    assert runs.action_button.text == "Cancelling…" and not runs.action_button.enabled
    release.set()  # the run yields once more, then stops
    _wait_idle(qtbot, runs)
    assert closed == [True]  # the run was closed: it could clean up
    assert runs.items == [1]  # what came after the cancel is not shown
    assert runs.returned == [] and runs.status.value == "cancelled here"
    assert runs.activity is None and activity.disable  # closed: gone from the activity dock
    assert runs.action_button.text == "Go" and not runs.progress.visible


def test_a_finished_run_closes_its_activity_entry(qtbot, runs):
    runs.go((i for i in range(5)), total=5)
    activity = runs.activity
    _wait_idle(qtbot, runs)
    assert runs.items == [0, 1, 2, 3, 4] and activity.n == 5 and activity.disable


def test_guess_sources():
    from napari.layers import Image

    def layer(name, **marker):
        metadata = {MARKER: marker} if marker else {}
        return Image(np.zeros((4, 4), np.uint8), name=name, metadata=metadata)

    camera, thermal, other = layer("camera"), layer("Thermal_1"), layer("other")
    assert guess_sources([camera, thermal]) == (thermal, camera)
    assert guess_sources([layer("rgb"), other])[1].name == "rgb"
    assert guess_sources([layer("rgb"), other])[0] is other  # not the visible-looking one
    assert guess_sources([camera, thermal], visible=thermal) == (camera, thermal)
    fused = layer("fused", output="fused", infrared="camera", visible="other")
    assert guess_sources([thermal, camera, other, fused]) == (camera, other)  # its sources
    weights = layer("weights [a]", output="weights")
    assert guess_sources([weights, camera]) == (camera, None)  # outputs are not sources
