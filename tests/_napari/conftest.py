"""Fixtures for the napari tests: a real viewer (``make_napari_viewer``), the docked widget and
a notification recorder. Runs need a display: use ``xvfb-run`` on a headless machine."""

from __future__ import annotations

import os

import pytest

from tests.conftest import textured_pair

PLUGIN = "napari-resfuse"
WIDGET = "Fuse infrared + visible"
#: A run on the 240 x 320 sample takes about a second on two CPU cores; be generous.
RUN_TIMEOUT_MS = 120_000


def pytest_runtest_setup(item):
    """Qt aborts the whole process without a display: skip the Qt tests clearly instead."""
    has_display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not has_display and "qapp" in item.fixturenames:
        pytest.skip("needs a display for Qt: run the tests under xvfb-run (make test does)")


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def small_layers(viewer):
    """Two 64 x 96 uint8 layers, "ir" and "vis"."""
    ir, vis = textured_pair()
    return viewer.add_image(ir, name="ir"), viewer.add_image(vis, name="vis")


@pytest.fixture
def widget(viewer):
    """The fusion widget, docked the way a user (or a script) docks it."""
    _dock, inner = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    return inner


@pytest.fixture
def notifications():
    """Every napari notification dispatched during the test, in order."""
    from napari.utils.notifications import notification_manager

    received = []
    notification_manager.notification_ready.connect(received.append)
    yield received
    notification_manager.notification_ready.disconnect(received.append)


def wait_for_run(qtbot, widget, timeout=RUN_TIMEOUT_MS):
    """Process events until the widget's run (if any) has finished."""
    qtbot.waitUntil(lambda: not widget.is_running, timeout=timeout)
