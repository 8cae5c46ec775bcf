"""The "Align infrared to visible" dock widget.

Two ways to a :class:`~napari_resfuse.register.Registration` of the infrared layer onto the
visible layer's pixel grid:

- *Automatic*: :func:`napari_resfuse.register.register` in a thread worker, with progress
  and cancel (the Align↔Cancel button, progress bar and activity-dock entry of
  :class:`~napari_resfuse._napari._dock.DockWidget`, like the other dock widgets).
- *Landmarks*: two Points layers, ``landmarks [<ir>]`` and ``landmarks [<vis>]``, in which the
  user clicks corresponding points (point k of one with point k of the other); the residual of
  each pair and the RMS update as points are added, moved or removed; "Apply" uses them.

Either way the result goes to the infrared layer's ``affine`` (composed with both layers'
transforms, so that the infrared layer lands on the visible layer in world coordinates), with
the infrared layer on top in a colormap and additive blending, and to its
``metadata["registration"]`` (the registration file's JSON content). Save…/Load… read and
write the same file as ``resfuse register``.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton, RadioButtons
from napari.layers import Image, Points
from napari.utils.notifications import show_info, show_warning
from psygnal import Signal
from superqt.utils import GeneratorWorker

from ..register import (
    MIN_POINTS,
    MODELS,
    Registration,
    RegistrationCancelled,
    register,
    register_landmarks,
)
from ._alignment import (
    apply_registration,
    data_to_world,
    first_plane,
    registration_from_layers,
    spatial_shape,
)
from ._dock import USER_AND_FILE_ERRORS, DockWidget
from ._inputs import resolve_layer

__all__ = [
    "AlignWidget",
    "apply_registration",
    "data_to_world",
    "landmark_layer_names",
    "registration_from_layers",
]

_MODES = ("Automatic", "Landmarks")


def landmark_layer_names(infrared: Image, visible: Image) -> tuple[str, str]:
    return f"landmarks [{infrared.name}]", f"landmarks [{visible.name}]"


class _WorkerLink:
    """How the estimator, running in a worker thread, reaches its worker: its progress goes
    out as the worker's ``yielded`` items (Qt delivers them in the main thread) and it stops
    once the worker is asked to quit. ``worker`` is set once the run has started; progress
    reported before that is dropped."""

    worker: GeneratorWorker | None = None

    def report(self, stage: str, fraction: float) -> None:
        worker = self.worker
        if worker is not None:
            worker.yielded.emit((str(stage), float(fraction)))

    def should_stop(self) -> bool:
        worker = self.worker
        return worker is not None and worker.abort_requested


def _registration_steps(
    infrared: np.ndarray, visible: np.ndarray, model: str, link: _WorkerLink
) -> Generator[tuple[str, float], None, Registration]:
    """The automatic run (a generator, run by the widget's worker). It yields nothing itself:
    :func:`~napari_resfuse.register.register` is one call, whose progress goes out through
    ``link``, and which stops with ``RegistrationCancelled`` when the worker is cancelled."""
    yield from ()
    return register(
        infrared, visible, model=model, progress=link.report, should_stop=link.should_stop
    )


class AlignWidget(DockWidget):
    """Align an infrared Image layer to a visible one (automatic or from landmarks).

    The layer pickers, the Align↔Cancel button, the progress and the error reports are those
    of every dock widget of the plugin (:class:`~napari_resfuse._napari._dock.DockWidget`).

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose Image layers are offered.

    Attributes
    ----------
    registration : Registration or None
        The last registration applied (or loaded).
    residuals : ndarray or None
        Landmarks: the residual of each pair (visible px) with the current points.
    rms : float or None
        Landmarks: their root mean square.
    """

    _user_errors = USER_AND_FILE_ERRORS
    _cancelled_text = "cancelled: the layers are unchanged"

    #: Emitted in the main thread with the Registration each time one is applied.
    applied = Signal(object)
    #: Emitted in the main thread when an automatic run has ended (done, cancelled, failed).
    run_finished = Signal()

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, button="Align", start=self.run, task="alignment")
        self.registration: Registration | None = None
        self.residuals: np.ndarray | None = None
        self.rms: float | None = None
        self._points: tuple[Points, Points] | None = None

        self.mode = RadioButtons(choices=_MODES, value="Automatic", orientation="horizontal")
        self.model = ComboBox(label="model", choices=MODELS, value="affine")
        self.align_button = self.action_button
        self.landmarks_button = PushButton(text="Add landmark layers")
        self.apply_button = PushButton(text="Apply landmarks")
        self.residual_text = Label(label="residuals", value="")
        self.residual_text.native.setWordWrap(True)
        self.save_button = PushButton(text="Save…")
        self.load_button = PushButton(text="Load…")
        self.status.native.setMinimumHeight(2 * self.status.native.fontMetrics().height())
        self.extend(
            [
                self.infrared_layer,
                self.visible_layer,
                self.mode,
                self.model,
                self.align_button,
                self.landmarks_button,
                self.residual_text,
                self.apply_button,
                Container(
                    widgets=[self.save_button, self.load_button], layout="horizontal", labels=False
                ),
                self.progress,
                self.status,
            ]
        )
        self.mode.changed.connect(self._on_mode)
        self.landmarks_button.changed.connect(lambda *_: self.add_landmark_layers())
        self.apply_button.changed.connect(lambda *_: self.apply_landmarks())
        self.model.changed.connect(lambda *_: self.update_residuals())
        self.save_button.changed.connect(self._on_save_button)
        self.load_button.changed.connect(self._on_load_button)
        self._follow_layers()
        self._on_mode()

    # --- layers ----------------------------------------------------------------------------
    def _pair(self) -> tuple[Image, Image]:
        ir = resolve_layer(self._viewer, self.infrared_layer.value, "infrared")
        vis = resolve_layer(self._viewer, self.visible_layer.value, "visible")
        if ir is vis:
            raise ValueError(f"the infrared and visible layers are the same layer ({ir.name!r})")
        return ir, vis

    def _on_mode(self, *_: Any) -> None:
        auto = self.mode.value == "Automatic"
        self.align_button.visible = auto
        for widget in (self.landmarks_button, self.apply_button, self.residual_text):
            widget.visible = not auto

    # --- applying --------------------------------------------------------------------------
    def apply(self, registration: Registration) -> None:
        """Write ``registration`` to the infrared layer (see :func:`apply_registration`)."""
        ir, vis = self._pair()
        note = apply_registration(ir, vis, registration, self._viewer)
        self.registration = registration
        if self._points is not None:  # the infrared landmarks follow their image
            self._points[0].affine = data_to_world(ir)
        text = (
            f"aligned ({registration.model}, {registration.method}): overlap "
            f"{100 * registration.overlap:.0f} % of the visible frame, scale "
            f"{registration.scale:.3g}, rotation {registration.rotation:.1f}°"
        )
        if registration.score is not None:
            text += f", score {registration.score:.3g}"
        if registration.rms is not None:
            text += f", RMS {registration.rms:.2f} px"
        self.status.value = text
        if note:
            show_info(f"napari-resfuse: {note}")
        self.applied.emit(registration)

    # --- automatic (is_running, Align↔Cancel, cancel(), progress: see DockWidget) -------
    def run(self) -> GeneratorWorker | None:
        """Start the automatic registration in a thread worker; returns it (None if refused).

        Refused (with a notification) while one runs; bad layers are one notification and
        start nothing. Cancelling stops the estimator at its next check; the layers are then
        left as they were.
        """
        if self._refused("an alignment is"):
            return None
        try:
            ir, vis = self._pair()
            ir_data, vis_data = first_plane(ir), first_plane(vis)
        except self._user_errors as exc:
            self._show_user_error(exc)
            return None
        link = _WorkerLink()
        link.worker = self._start_run(
            _registration_steps(ir_data, vis_data, self.model.value, link),
            yielded=self._on_progress,
            returned=lambda reg: self._on_returned(reg, ir, vis),
            status=f"aligning {ir.name!r} to {vis.name!r}…",
            total=100,
        )
        return link.worker

    def _on_progress(self, stage_fraction: tuple[str, float]) -> None:
        stage, fraction = stage_fraction
        self._set_progress(round(100 * min(max(fraction, 0.0), 1.0)))
        self.status.value = f"{stage} ({100 * fraction:.0f} %)"

    def _on_returned(self, registration: Registration, ir: Image, vis: Image) -> None:
        if self._cancelled:  # finished before the cancel reached it: leave the layers alone
            return
        if self.infrared_layer.value is not ir or self.visible_layer.value is not vis:
            self.infrared_layer.value, self.visible_layer.value = ir, vis
        try:
            self.apply(registration)
        except self._user_errors as exc:
            self._show_user_error(exc)

    def _on_errored(self, exc: Exception) -> None:
        if self._cancelled or isinstance(exc, RegistrationCancelled):
            return  # the estimator stopping on request is not an error
        super()._on_errored(exc)

    def _on_finished(self) -> None:
        super()._on_finished()
        self.run_finished.emit()

    # --- landmarks -------------------------------------------------------------------------
    def add_landmark_layers(self) -> tuple[Points, Points] | None:
        """Create (or find) the two landmark Points layers, each in its image's data
        coordinates (the same transform), and follow their changes."""
        try:
            ir, vis = self._pair()
        except self._user_errors as exc:
            self._show_user_error(exc)
            return None
        names = landmark_layer_names(ir, vis)
        colours = ("#ff7f0e", "#1f77b4")
        made = []
        for name, image, colour in zip(names, (ir, vis), colours, strict=True):
            if name in self._viewer.layers and isinstance(self._viewer.layers[name], Points):
                layer = self._viewer.layers[name]
            else:
                layer = self._viewer.add_points(
                    np.empty((0, image.ndim)),
                    name=name,
                    ndim=image.ndim,
                    affine=data_to_world(image),
                    face_color=colour,
                    border_color="white",
                    size=max(3.0, 0.015 * max(spatial_shape(image))),
                    text={"string": "{index}", "color": colour, "anchor": "upper_left"},
                    features={"index": np.empty(0, int)},
                )
            layer.events.data.connect(self._on_points_changed)
            made.append(layer)
        self._points = (made[0], made[1])
        self._number_points()
        self.update_residuals()
        self._viewer.layers.selection.active = made[0]
        made[0].mode = "add"
        return self._points

    def _number_points(self) -> None:
        for layer in self._points or ():
            n = len(layer.data)
            if "index" not in layer.features or list(layer.features["index"]) != list(
                range(1, n + 1)
            ):
                layer.features = {"index": np.arange(1, n + 1)}

    def _on_points_changed(self, event=None) -> None:
        action = getattr(event, "action", None)
        if action is not None and str(getattr(action, "value", action)).endswith("ing"):
            return  # before the change (adding, changing, removing): wait for its end
        self._number_points()
        self.update_residuals()
        if action is not None and str(getattr(action, "value", action)) == "added":
            self._hand_over(getattr(event, "source", None))

    def _hand_over(self, source) -> None:
        """After a point is added to one landmark layer, make the other one active (in add
        mode) unless it still lacks points: the user clicks the same feature there next, then
        the next pair starts."""
        if self._points is None or source is None:
            return
        ir_layer, vis_layer = self._points
        other = vis_layer if source is ir_layer else ir_layer if source is vis_layer else None
        if other is not None and len(source.data) >= len(other.data):
            self._viewer.layers.selection.active = other
            other.mode = "add"

    def landmark_points(self) -> tuple[np.ndarray, np.ndarray]:
        """The current ``(infrared, visible)`` landmark points in pixel ``(row, col)``."""
        if self._points is None:
            raise ValueError("no landmark layers yet: press 'Add landmark layers'")
        ir_pts, vis_pts = (np.asarray(layer.data, float)[:, -2:] for layer in self._points)
        return ir_pts, vis_pts

    def _fit(self) -> Registration:
        ir, vis = self._pair()
        ir_pts, vis_pts = self.landmark_points()
        return register_landmarks(
            ir_pts,
            vis_pts,
            model=self.model.value,
            infrared_shape=spatial_shape(ir),
            visible_shape=spatial_shape(vis),
        )

    def update_residuals(self) -> None:
        """Recompute and show the residual of each landmark pair and their RMS."""
        self.residuals, self.rms = None, None
        if self._points is None:
            self.residual_text.value = ""
            return
        ir_pts, vis_pts = self.landmark_points()
        need = MIN_POINTS[self.model.value]
        if len(ir_pts) != len(vis_pts) or len(ir_pts) < need:
            self.residual_text.value = (
                f"{len(ir_pts)} infrared and {len(vis_pts)} visible points; the "
                f"{self.model.value} model needs {need} pairs or more (point k of one layer "
                "with point k of the other)"
            )
            return
        try:
            reg = self._fit()
        except self._user_errors as exc:
            self.residual_text.value = str(exc)
            return
        self.residuals, self.rms = reg.residuals, reg.rms
        pairs = ", ".join(f"{k + 1}: {r:.2f}" for k, r in enumerate(reg.residuals))
        self.residual_text.value = f"RMS {reg.rms:.2f} px over {len(ir_pts)} pairs ({pairs})"

    def apply_landmarks(self) -> Registration | None:
        """Fit the chosen model to the landmarks and apply it; returns it (None on error)."""
        try:
            reg = self._fit()
            self.apply(reg)
        except self._user_errors as exc:
            self._show_user_error(exc)
            return None
        return reg

    # --- files -----------------------------------------------------------------------------
    def save(self, path) -> Path | None:
        """Write the applied registration to ``path`` (the ``resfuse register`` format)."""
        if self.registration is None:
            show_warning("napari-resfuse: nothing to save yet: align the layers first")
            return None
        written = self.registration.save(path)
        self.status.value = f"saved {written}"
        return written

    def load(self, path) -> Registration | None:
        """Read a registration file and apply it to the chosen layers (shapes checked)."""
        try:
            reg = Registration.load(path)
            ir, vis = self._pair()
            if reg.infrared_shape is None or reg.visible_shape is None:
                reg = reg.with_shapes(spatial_shape(ir), spatial_shape(vis))
            self.apply(reg)
        except self._user_errors as exc:
            self._show_user_error(exc)
            return None
        return reg

    def _on_save_button(self, *_: Any) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _filter = QFileDialog.getSaveFileName(
            self.native, "Save registration", "registration.json", "registration (*.json)"
        )
        if path:
            self.save(path)

    def _on_load_button(self, *_: Any) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _filter = QFileDialog.getOpenFileName(
            self.native, "Load registration", "", "registration (*.json)"
        )
        if path:
            self.load(path)
