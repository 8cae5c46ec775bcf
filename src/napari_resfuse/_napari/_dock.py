"""What the three dock widgets share: layer pickers, Run↔Cancel, progress, status, reporting.

:class:`DockWidget` is the base of the "Fuse infrared + visible", "Fusion metrics" and "Compare
methods" widgets:

- **layer pickers**: ``infrared_layer`` and ``visible_layer`` list the viewer's Image layers
  and follow layers being added, removed, reordered or renamed. A layer the user picked stays
  picked while it exists; the other choices are guessed (:func:`guess_sources`): the sources of
  this plugin's fused output if there is one, else names that look like infrared
  (``infrared``, ``thermal``, ``lwir``, ``ir``) or visible (``visible``, ``rgb``, ``vis``),
  else the remaining layers in order, skipping this plugin's outputs;
- **one run at a time** in a superqt thread worker behind one button, which reads "Cancel"
  while the run lasts and "Cancelling…" once cancelled;
- **progress** in the dock (a progress bar and a status line) and in napari's activity dock
  (a :class:`napari.utils.cancelable_progress`, whose Cancel button cancels the run too);
- **reporting**: an error meant for the user (``ValueError``, ...) is one notification with the
  message, any other error napari's error notification with its traceback, a warning one
  warning notification; each exactly once (the workers are superqt's, which notify nobody by
  themselves).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton
from napari.layers import Image
from napari.utils import cancelable_progress
from napari.utils.notifications import notification_manager, show_error, show_info, show_warning
from qtpy.QtWidgets import QSizePolicy
from superqt.utils import FunctionWorker, GeneratorWorker

from ._layer_specs import MARKER

__all__ = [
    "IR_HINTS",
    "USER_AND_FILE_ERRORS",
    "VIS_HINTS",
    "DockWidget",
    "by_hint",
    "guess_sources",
    "is_output",
]

#: User errors of the runs that read files (weights): the message is meant for the user.
USER_AND_FILE_ERRORS: tuple[type[Exception], ...] = (ValueError, FileNotFoundError)
#: Name hints of infrared and visible layers, most telling first.
IR_HINTS = ("infrared", "thermal", "lwir", "ir")
VIS_HINTS = ("visible", "rgb", "vis")


def is_output(layer: Any) -> bool:
    """Whether ``layer`` is an output of this plugin (it carries the plugin's marker)."""
    return isinstance(layer.metadata.get(MARKER), dict)


def is_fused_output(layer: Any) -> bool:
    """Whether ``layer`` is a fused output of the fusion widget or ``fuse_layers``."""
    marker = layer.metadata.get(MARKER)
    return isinstance(marker, dict) and marker.get("output") == "fused"


def by_hint(layers: Sequence, hints: Sequence[str], avoid: Any = None) -> Any:
    """The first layer (other than ``avoid``) whose name has a word equal to a hint or starts
    with it, trying the hints in order; None if none does."""
    for hint in hints:
        for layer in layers:
            words = layer.name.lower().replace("_", " ").replace("-", " ").split()
            if layer is not avoid and (hint in words or layer.name.lower().startswith(hint)):
                return layer
    return None


def guess_sources(layers: Sequence, infrared: Any = None, visible: Any = None) -> tuple[Any, Any]:
    """Guess the infrared and visible layers among ``layers`` (keeping a given one).

    The sources named by this plugin's first fused output come first, then names that look
    like infrared or visible (:data:`IR_HINTS`, :data:`VIS_HINTS`), then the remaining layers
    in order; this plugin's outputs are skipped unless there is nothing else.
    """
    fused = [layer for layer in layers if is_fused_output(layer)]
    if fused and (infrared is None or visible is None):
        marker = fused[0].metadata[MARKER]
        by_name = {layer.name: layer for layer in layers}
        infrared = infrared if infrared is not None else by_name.get(marker.get("infrared"))
        visible = visible if visible is not None else by_name.get(marker.get("visible"))
    inputs = [layer for layer in layers if not is_output(layer)] or list(layers)
    if infrared is None:
        infrared = by_hint(inputs, IR_HINTS, avoid=visible)
    if visible is None:
        visible = by_hint(inputs, VIS_HINTS, avoid=infrared)
    rest = [layer for layer in inputs if layer is not infrared and layer is not visible]
    if infrared is None and rest:
        infrared = rest.pop(0)
    if visible is None and rest:
        visible = rest.pop(0)
    return infrared, visible


class _RunFailed(Exception):
    """Carries a ``RuntimeError`` out of a generator worker: superqt takes a ``RuntimeError``
    raised there for a deleted Qt object and drops it (no ``errored``, no ``finished``)."""


class _ActivityProgress(cancelable_progress):
    """A run's entry in napari's activity dock; its Cancel button cancels the run."""

    def __init__(self, *args: Any, on_cancel: Callable[[], Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_cancel = on_cancel

    def cancel(self) -> None:
        super().cancel()
        self._on_cancel()


class DockWidget(Container):
    """Base of the dock widgets: pickers, one worker at a time behind a Run↔Cancel button.

    A subclass passes its button text and start method (called on a click while idle), lays
    out its fields (``self.infrared_layer``, ``self.visible_layer``, ``self.action_button``,
    ``self.progress`` and ``self.status`` are made here), registers further layer pickers with
    :meth:`_add_picker` and then calls :meth:`_follow_layers`, starts each run with
    :meth:`_start_run` (reporting progress with :meth:`_set_progress`), and extends
    :meth:`_on_finished`, :meth:`_on_errored` or :meth:`_guess_choices` where it does more.
    Class attributes set the status texts and which errors are the user's.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose Image layers are offered.
    button : str
        The button's text when idle ("Run", "Compute").
    start : callable
        Called (no arguments) when the button is clicked while idle.
    task : str
        What a run does, for napari's activity dock ("fusion", "metrics", ...).
    """

    #: Errors whose message is meant for the user: a one-line notification, no traceback.
    _user_errors: tuple[type[Exception], ...] = (ValueError,)
    #: The status while a cancel is on its way, and once the run has stopped.
    _cancelling_text = "cancelling…"
    _cancelled_text = "cancelled"

    def __init__(self, viewer: Any, *, button: str, start: Callable[[], Any], task: str):
        super().__init__(labels=True)
        # napari hands plugins a proxy of the viewer; layers taken from a proxy are proxies too,
        # which Qt's item models (the layer lists) cannot compare. Only public API is used.
        self._viewer = getattr(viewer, "__wrapped__", viewer)
        self._task, self._start, self._idle_text = task, start, button
        self._worker: GeneratorWorker | None = None
        self._cancelled = False
        #: The run's entry in napari's activity dock (None while idle).
        self.activity: cancelable_progress | None = None

        self.infrared_layer = ComboBox(label="infrared", choices=self._image_layers, nullable=True)
        self.visible_layer = ComboBox(label="visible", choices=self._image_layers, nullable=True)
        self.action_button = PushButton(text=button)
        self.progress = ProgressBar(label="progress", value=0, min=0, max=1, visible=False)
        self.status = Label(label="status", value="")
        self.status.native.setWordWrap(True)
        self.status.native.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.action_button.changed.connect(self._on_button)

        self._pickers: list[Any] = []
        self._auto: list[bool] = []
        self._resetting = False
        self._add_picker(self.infrared_layer)
        self._add_picker(self.visible_layer)

    # --- layer pickers ---------------------------------------------------------------------
    def _image_layers(self, _widget: Any = None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def _add_picker(self, picker: Any) -> None:
        """Track ``picker`` (a ComboBox, or a Select of layers): a value the user sets is kept
        while its layers exist; otherwise :meth:`_guess_choices` fills it in."""
        index = len(self._pickers)
        self._pickers.append(picker)
        self._auto.append(True)
        picker.changed.connect(lambda *_: self._on_picked(index))

    def _on_picked(self, index: int) -> None:
        if not self._resetting:
            self._auto[index] = False

    def _follow_layers(self) -> None:
        """Refresh the pickers now and whenever layers are added, removed, reordered or
        renamed (call once the subclass's pickers exist)."""
        events = self._viewer.layers.events
        for event in (events.inserted, events.removed, events.reordered, events.renamed):
            event.connect(self.reset_choices)
        self.reset_choices()

    def _guess_choices(self, layers: list, infrared: Any, visible: Any, *more: Any) -> tuple:
        """The pickers' values, given the layers and the values kept (None or [] to guess)."""
        return guess_sources(layers, infrared, visible)

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer lists (layers added, removed, reordered or renamed).

        A layer the user picked stays picked while it exists (renamed or not); the other
        choices are guessed again (see :func:`guess_sources`).
        """
        keep = [picker.value for picker in self._pickers]
        self._resetting = True
        try:
            super().reset_choices()
            layers = [layer for _, layer in self._image_layers()]

            def alive(layer: Any) -> bool:
                return layer is not None and any(layer is other for other in layers)

            kept: list[Any] = []
            for value, auto in zip(keep, self._auto, strict=True):
                if isinstance(value, list | tuple):
                    kept.append([] if auto else [lay for lay in value if alive(lay)])
                else:
                    kept.append(value if not auto and alive(value) else None)
            self._auto = [value is None or value == [] for value in kept]
            values = self._guess_choices(layers, *kept)
            for picker, value in zip(self._pickers, values, strict=True):
                picker.value = value
        finally:
            self._resetting = False

    # --- one run at a time -----------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        """Whether a run is in progress (until its worker has finished)."""
        return self._worker is not None

    def _on_button(self, *_: Any) -> None:
        if self.is_running:
            self.cancel()
        else:
            self._start()

    def _refused(self, what: str) -> bool:
        """True, with a notification, if a run is in progress (``what`` is already running)."""
        if self.is_running:
            show_info(f"napari-resfuse: {what} already running; wait for it or cancel it")
        return self.is_running

    def _start_run(
        self,
        runner: Generator[Any, None, Any],
        *,
        yielded: Callable[[Any], Any],
        returned: Callable[[Any], Any] | None = None,
        status: str | None = None,
        total: int | None = None,
    ) -> GeneratorWorker:
        """Run ``runner`` (a generator, not started yet) in a thread worker and show it running.

        Each item it yields goes to ``yielded``, its return value to ``returned`` (both in the
        main thread); errors and warnings are reported (:meth:`_on_errored`,
        :meth:`_on_warned`). The button reads "Cancel", the progress is 0 (of ``total``, if
        given) and the status ``status``. Cancelling closes ``runner`` once the worker has
        stopped between two items, so that it can clean up (an engine run stops, a partial
        output is removed). Returns the worker, started.
        """

        def body():
            try:
                return (yield from runner)
            except RuntimeError as exc:
                raise _RunFailed(exc) from exc

        worker = GeneratorWorker(body)

        def on_yielded(item: Any) -> None:
            if self._worker is worker and not self._cancelled:  # else: it reports no more
                yielded(item)
                self._sync_activity()

        worker.yielded.connect(on_yielded)
        if returned is not None:
            worker.returned.connect(returned)
        worker.aborted.connect(runner.close)  # the runner is idle once ``aborted`` arrives
        worker.errored.connect(self._on_errored)
        worker.warned.connect(self._on_warned)
        worker.finished.connect(self._on_finished)
        self._worker, self._cancelled = worker, False
        self.action_button.text = "Cancel"
        self._set_progress(0, total)
        self.progress.visible = True
        if status is not None:
            self.status.value = status
        self.activity = _ActivityProgress(
            total=total or 0, desc=f"napari-resfuse: {self._task}", on_cancel=self.cancel
        )
        worker.start()
        return worker

    def _set_progress(self, done: int, total: int | None = None) -> None:
        """Show ``done`` steps (of ``total``, if given); the activity dock follows once the
        item has been handled."""
        if total is not None:
            self.progress.max = total
        self.progress.value = done

    def _sync_activity(self) -> None:
        """Bring the activity dock's entry up to the dock's progress bar. Done last in each
        slot: napari's progress bars process Qt events when they change, so later signals of
        the worker (even ``finished``) may be handled in here."""
        activity = self.activity
        if activity is None:
            return
        total = int(self.progress.max)
        if total != activity.total:
            activity.total = total
        done = int(self.progress.value)
        if done != activity.n:
            activity.update(done - activity.n)

    def _start_task(
        self, func: Callable[..., Any], *args: Any, returned: Callable[[Any], Any], what: str
    ) -> FunctionWorker:
        """Run ``func(*args)`` in a thread worker beside the runs (no button, no progress);
        its errors are one notification each, prefixed with ``what``, its warnings too."""
        worker = FunctionWorker(func, *args)
        worker.returned.connect(returned)
        worker.errored.connect(lambda exc: show_error(f"napari-resfuse: {what}: {exc}"))
        worker.warned.connect(self._on_warned)
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the run in progress, if any, to stop; the status says so until it has."""
        if self._worker is None or self._cancelled:
            return
        self._cancelled = True
        self._worker.quit()
        self.action_button.text = "Cancelling…"
        self.action_button.enabled = False
        self.status.value = self._cancelling_text

    def _show_user_error(self, exc: Exception) -> None:
        """A problem with the user's choices: one notification with its message."""
        show_error(f"napari-resfuse: {exc}")

    def _on_errored(self, exc: Exception) -> None:
        if isinstance(exc, _RunFailed) and exc.__cause__ is not None:
            exc = exc.__cause__
        self.status.value = f"failed: {type(exc).__name__}"
        if isinstance(exc, self._user_errors):  # the message is meant for the user
            self._show_user_error(exc)
        else:  # a bug: napari's error notification, with the traceback in its details
            notification_manager.receive_error(type(exc), exc, exc.__traceback__)

    def _on_warned(self, show_warn_args: tuple) -> None:
        show_warning(f"napari-resfuse: {show_warn_args[0]}")  # (message, category, ...)

    def _on_finished(self) -> None:
        """The worker has finished (done, cancelled or failed): back to idle."""
        self._worker = None
        self.action_button.text = self._idle_text
        self.action_button.enabled = True
        self.progress.visible = False
        if self.activity is not None:
            self.activity.close()
            self.activity = None
        if self._cancelled:
            self.status.value = self._cancelled_text
