"""The napari part of ``make demo``: the sample pair, the widget docked, the fusion shown.

With a display, :func:`show_or_screenshot` opens napari and runs the fusion in the widget (the
user sees its progress), then hands over to napari's event loop. Without one, it says so and,
in a child process on a private virtual X server (``Xvfb``), opens the same window, runs the
fusion and writes a screenshot of it (the widget docked beside the fused sample).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

__all__ = ["has_display", "show_or_screenshot"]

#: File name of the screenshot written on a headless machine.
SCREENSHOT = "napari_widget.png"
_WINDOW_SIZE = (1280, 760)


def has_display() -> bool:
    """Whether a graphical session is available (``DISPLAY`` or ``WAYLAND_DISPLAY`` set)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@contextmanager
def _virtual_display():
    """An environment for a child process with a private ``Xvfb`` server as its display.

    Yields ``(env, description)``, or ``(None, reason)`` when ``Xvfb`` is not installed (Qt's
    ``offscreen`` platform has no OpenGL for napari's canvas). The server stops when the block
    ends; this process never connects to it (Qt aborts a process whose X server goes away).
    """
    env = dict(os.environ)
    env.pop("WAYLAND_DISPLAY", None)
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        yield None, "Xvfb is not installed (Debian/Ubuntu: apt-get install xvfb)"
        return
    read_fd, write_fd = os.pipe()
    screen = f"{_WINDOW_SIZE[0] + 200}x{_WINDOW_SIZE[1] + 200}x24"
    server = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()  # Xvfb writes its display number once ready
        if not number:
            raise RuntimeError("Xvfb did not start")
        env["DISPLAY"] = f":{number}"
        yield env, f"Xvfb :{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _open_demo_viewer(weights: str, *, show: bool):
    """A viewer with the sample pair, the widget docked and set up for ``weights``."""
    import napari

    viewer = napari.Viewer(title="napari-resfuse demo", show=show)
    viewer.window.resize(*_WINDOW_SIZE)
    viewer.open_sample("napari-resfuse", "street")
    _dock, widget = viewer.window.add_plugin_dock_widget(
        "napari-resfuse", "Fuse infrared + visible"
    )
    widget.set_options(weights=str(weights))
    for kind in ("detail", "weights"):
        widget.outputs[kind].value = True
    return viewer, widget


def _show_fused(viewer) -> None:
    """Show the fused layer on its own (the inputs and maps stay in the layer list)."""
    fused = [layer for layer in viewer.layers if layer.name.startswith("fused")]
    for layer in viewer.layers:
        layer.visible = layer in fused
    if fused:
        viewer.layers.selection.active = fused[-1]
    viewer.reset_view()


def _run_and_wait(widget) -> bool:
    """Run the widget's fusion and process events until it ends; True if layers were added."""
    from napari.utils.notifications import notification_manager
    from qtpy.QtCore import QEventLoop

    def report(notification):
        print(f"napari demo: {notification.severity}: {notification.message}")

    notification_manager.notification_ready.connect(report)
    try:
        loop = QEventLoop()
        widget.run_finished.connect(loop.quit)  # emitted from the event loop: cannot be missed
        if widget.run() is not None:
            loop.exec_()
    finally:
        notification_manager.notification_ready.disconnect(report)
    return bool(widget.last_layers)


def show_or_screenshot(out_dir: Path, weights: str, *, display: bool | None = None) -> Path | None:
    """Show the fusion of the bundled sample in napari, or screenshot it when headless.

    Parameters
    ----------
    out_dir : Path
        Where the screenshot goes on a headless machine (created if needed).
    weights : str
        ``"imagenet"``, ``"random"`` or the path of a weights file, as for
        :func:`napari_resfuse.fuse`.
    display : bool, optional
        Force the interactive (True) or the headless (False) path; by default, interactive
        when :func:`has_display`.

    Returns
    -------
    Path or None
        The screenshot (``out_dir / "napari_widget.png"``) on the headless path; None after
        the interactive session ends.
    """
    interactive = has_display() if display is None else display
    if interactive:
        import napari

        viewer, widget = _open_demo_viewer(weights, show=True)
        widget.run_finished.connect(lambda: _show_fused(viewer))
        widget.run()  # in a thread: the window shows its progress
        napari.run()
        return None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    print("napari demo: no display (DISPLAY / WAYLAND_DISPLAY unset), writing a screenshot instead")
    with _virtual_display() as (env, where):
        if env is None:
            print(f"napari demo: no screenshot: {where}")
            return None
        # no warning toasts over the picture (napari reads its settings from NAPARI_* variables)
        env["NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL"] = "error"
        command = [sys.executable, "-m", __name__, str(out_dir), str(weights)]
        done = subprocess.run(command, env=env, check=False)
    path = out_dir / SCREENSHOT
    if done.returncode != 0 or not path.is_file():
        print(f"napari demo: the screenshot failed (exit status {done.returncode}, {where})")
        return None
    print(f"napari demo: screenshot of napari with the widget docked ({where}) -> {path}")
    return path


def _screenshot(out_dir: Path, weights: str) -> Path:
    """Open the demo viewer on the current display, fuse, and screenshot the window."""
    viewer, widget = _open_demo_viewer(weights, show=True)
    try:
        if not _run_and_wait(widget):
            print("napari demo: the fusion added no layers; the screenshot shows the inputs")
        _show_fused(viewer)
        path = Path(out_dir) / SCREENSHOT
        viewer.screenshot(str(path), canvas_only=False, flash=False)
    finally:
        viewer.close()
    return path


if __name__ == "__main__":  # the headless path's child process
    _screenshot(Path(sys.argv[1]), sys.argv[2])
