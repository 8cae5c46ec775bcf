"""What the widgets share about thread workers and layer lists."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

from magicgui.widgets import Label, ProgressBar, PushButton
from napari.qt.threading import GeneratorWorker
from napari.utils.notifications import notification_manager, show_error
from qtpy.QtWidgets import QSizePolicy

__all__ = ["QuietGeneratorWorker", "WorkerRunner", "follow_layer_list", "relay"]

_Y = TypeVar("_Y")
_R = TypeVar("_R")


def relay(runner: Generator[_Y, None, _R]) -> Generator[_Y, None, _R]:
    """A worker body that re-yields ``runner``'s items and returns its value; stopping the
    worker closes ``runner`` (so an engine run stops between stages)."""
    try:
        return (yield from runner)
    finally:
        runner.close()


class QuietGeneratorWorker(GeneratorWorker):
    """napari's generator worker without its generic error notification: the widgets show
    user errors as one line themselves (and bugs with their traceback)."""

    def _relay_error(self, exc: Exception) -> None:
        """No generic relay: it would add a traceback notification for user errors too."""


def follow_layer_list(viewer: Any, callback: Callable[..., Any]) -> None:
    """Call ``callback`` whenever layers are added, removed, reordered or renamed."""
    events = viewer.layers.events
    for event in (events.inserted, events.removed, events.reordered, events.renamed):
        event.connect(callback)


class WorkerRunner:
    """One thread worker at a time behind a Run↔Cancel button: what the dock widgets share.

    A widget (a magicgui ``Container``, with this class first among its bases) calls
    :meth:`_init_runner` in its ``__init__``, starts each worker with :meth:`_start_worker`
    and defines ``cancel()`` (which calls :meth:`_cancel_worker` with its own status text).
    The button shows its own text ("Run", "Compute") when idle, "Cancel" while a worker runs
    and "Cancelling…" (disabled) once cancelled, until the worker has finished. Widgets extend
    :meth:`_on_finished` and :meth:`_on_errored` where they do more.
    """

    #: Errors whose message is meant for the user: a one-line notification, no traceback.
    _user_errors: tuple[type[Exception], ...] = (ValueError,)
    #: The status a cancelled run ends with.
    _cancelled_text = "cancelled"

    def _init_runner(self, button: PushButton, start: Callable[[], Any]) -> None:
        """Make ``self.progress`` (hidden) and ``self.status``; a click on ``button`` calls
        ``start`` when idle and ``self.cancel`` while a worker runs."""
        self._button, self._idle_text, self._start = button, button.text, start
        self._worker: GeneratorWorker | None = None
        self._cancelled = False
        self.progress = ProgressBar(label="progress", value=0, min=0, max=1, visible=False)
        self.status = Label(label="status", value="")
        self.status.native.setWordWrap(True)
        self.status.native.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        button.changed.connect(self._on_button)

    @property
    def is_running(self) -> bool:
        """Whether a run is in progress (until its worker has finished)."""
        return self._worker is not None

    def _on_button(self, *_: Any) -> None:
        if self.is_running:
            self.cancel()
        else:
            self._start()

    def _start_worker(
        self, worker: GeneratorWorker, status: str | None = None, total: int | None = None
    ) -> GeneratorWorker:
        """Start ``worker`` (its other signals already connected) and show it running: the
        button reads "Cancel", the progress bar shows 0 (of ``total``, if given) and the
        status ``status`` (if given). Returns ``worker``."""
        worker.finished.connect(self._on_finished)
        self._worker, self._cancelled = worker, False
        self._button.text = "Cancel"
        if total is not None:
            self.progress.max = total
        self.progress.value, self.progress.visible = 0, True
        if status is not None:
            self.status.value = status
        worker.start()
        return worker

    def _cancel_worker(self, status: str) -> None:
        """Ask the running worker, if any, to stop; show ``status`` until it has."""
        if self._worker is None:
            return
        self._cancelled = True
        self._worker.quit()
        self._button.text = "Cancelling…"
        self._button.enabled = False
        self.status.value = status

    def _on_errored(self, exc: Exception) -> None:
        self.status.value = f"failed: {type(exc).__name__}"
        if isinstance(exc, self._user_errors):  # the message is meant for the user
            show_error(f"napari-resfuse: {exc}")
        else:  # a bug: napari's error notification, with the traceback in its details
            notification_manager.receive_error(type(exc), exc, exc.__traceback__)

    def _on_finished(self) -> None:
        """The worker has finished (done, cancelled or failed): back to idle."""
        self._worker = None
        self._button.text = self._idle_text
        self._button.enabled = True
        self.progress.visible = False
        if self._cancelled:
            self.status.value = self._cancelled_text
