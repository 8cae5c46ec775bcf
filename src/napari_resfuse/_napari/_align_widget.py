"""The "Align infrared to visible" dock widget.

Two ways to a :class:`~napari_resfuse.register.Registration` of the infrared layer onto the
visible layer's pixel grid:

- *Automatic*: :func:`napari_resfuse.register.register` in a napari thread worker, with
  progress and cancel.
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

from pathlib import Path
from typing import Any

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton, RadioButtons
from napari.layers import Image, Points
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from psygnal import Signal

from ..register import MIN_POINTS, MODELS, Registration, register, register_landmarks
from ._alignment import (
    apply_registration,
    data_to_world,
    first_plane,
    registration_from_layers,
    spatial_shape,
)
from ._workers import QuietGeneratorWorker, WorkerRunner, follow_layer_list

__all__ = [
    "AlignWidget",
    "apply_registration",
    "data_to_world",
    "landmark_layer_names",
    "registration_from_layers",
]

_USER_ERRORS = (ValueError, FileNotFoundError)
_MODES = ("Automatic", "Landmarks")


def landmark_layer_names(infrared: Image, visible: Image) -> tuple[str, str]:
    return f"landmarks [{infrared.name}]", f"landmarks [{visible.name}]"


# --- the widget --------------------------------------------------------------------------------


def _align_body(infrared, visible, model, report, should_stop):
    """The automatic worker's body (a generator, so that it can be quit; it yields nothing
    itself: the estimator's progress is relayed through ``report``)."""
    result = register(infrared, visible, model=model, progress=report, should_stop=should_stop)
    return result
    yield  # pragma: no cover  (makes this a generator)


class AlignWidget(WorkerRunner, Container):
    """Align an infrared Image layer to a visible one (automatic or from landmarks).

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

    _user_errors = _USER_ERRORS
    _cancelled_text = "cancelled: the layers are unchanged"

    #: Emitted in the main thread with the Registration each time one is applied.
    applied = Signal(object)
    #: Emitted in the main thread when an automatic run has ended (done, cancelled, failed).
    run_finished = Signal()

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = getattr(viewer, "__wrapped__", viewer)
        self.registration: Registration | None = None
        self.residuals: np.ndarray | None = None
        self.rms: float | None = None
        self._points: tuple[Points, Points] | None = None

        self.infrared_layer = ComboBox(label="infrared", choices=self._image_layers)
        self.visible_layer = ComboBox(label="visible", choices=self._image_layers)
        self.mode = RadioButtons(choices=_MODES, value="Automatic", orientation="horizontal")
        self.model = ComboBox(label="model", choices=MODELS, value="affine")
        self.align_button = PushButton(text="Align")
        self.landmarks_button = PushButton(text="Add landmark layers")
        self.apply_button = PushButton(text="Apply landmarks")
        self.residual_text = Label(label="residuals", value="")
        self.residual_text.native.setWordWrap(True)
        self.save_button = PushButton(text="Save…")
        self.load_button = PushButton(text="Load…")
        self._init_runner(self.align_button, self.run)  # makes self.progress, self.status
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
        self._resetting = False
        self._picked = [False, False]  # choices made by the user are kept on changes
        self.infrared_layer.changed.connect(lambda *_: self._on_picked(0))
        self.visible_layer.changed.connect(lambda *_: self._on_picked(1))
        follow_layer_list(self._viewer, self.reset_choices)
        self.reset_choices()
        self._on_mode()

    # --- layers ----------------------------------------------------------------------------
    def _image_layers(self, _widget=None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer lists. A layer the user picked stays picked while it exists;
        otherwise the choice is guessed from the names (``infrared``/``thermal``/``ir`` and
        ``visible``/``vis``/``rgb``)."""
        keep = [
            lay if picked else None
            for lay, picked in zip(
                (self.infrared_layer.value, self.visible_layer.value), self._picked, strict=True
            )
        ]
        self._resetting = True
        try:
            super().reset_choices()
            layers = [layer for _, layer in self._image_layers()]
            if not layers:
                return

            def pick(current, hints, avoid):
                if current is not None and any(current is lay for lay in layers):
                    return current
                for layer in layers:
                    if layer is not avoid and any(h in layer.name.lower() for h in hints):
                        return layer
                others = [lay for lay in layers if lay is not avoid]
                return others[0] if others else layers[0]

            vis = pick(keep[1], ("visible", "vis", "rgb"), keep[0])
            ir = pick(keep[0], ("infrared", "thermal", "ir"), vis)
            self._picked = [
                keep[0] is not None and ir is keep[0],
                keep[1] is not None and vis is keep[1],
            ]
            self.infrared_layer.value, self.visible_layer.value = ir, vis
        finally:
            self._resetting = False

    def _on_picked(self, index: int) -> None:
        if not self._resetting:
            self._picked[index] = True

    def _pair(self) -> tuple[Image, Image]:
        ir, vis = self.infrared_layer.value, self.visible_layer.value
        if ir is None or vis is None:
            raise ValueError("choose an infrared and a visible Image layer")
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

    # --- automatic -------------------------------------------------------------------------
    def run(self):
        """Start the automatic registration in a thread worker; returns it (None if refused)."""
        if self.is_running:
            show_info("napari-resfuse: an alignment is already running; wait or cancel it")
            return None
        try:
            ir, vis = self._pair()
            ir_data, vis_data = first_plane(ir), first_plane(vis)
        except _USER_ERRORS as exc:
            show_error(f"napari-resfuse: {exc}")
            return None
        model = self.model.value
        holder: dict[str, Any] = {}

        def report(stage: str, fraction: float) -> None:  # called in the worker thread
            worker = holder.get("worker")
            if worker is not None:
                worker.yielded.emit((str(stage), float(fraction)))

        def should_stop() -> bool:
            worker = holder.get("worker")
            return worker is not None and worker.abort_requested

        worker = create_worker(
            _align_body,
            ir_data,
            vis_data,
            model,
            report,
            should_stop,
            _start_thread=False,
            _worker_class=QuietGeneratorWorker,
            _ignore_errors=True,
        )
        holder["worker"] = worker
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda reg: self._on_returned(reg, ir, vis))
        worker.errored.connect(self._on_errored)
        self.progress.max = 100
        return self._start_worker(worker, status=f"aligning {ir.name!r} to {vis.name!r}…")

    def cancel(self) -> None:
        """Ask the running alignment to stop; the layers stay as they are."""
        self._cancel_worker("cancelling…")

    def _on_progress(self, event) -> None:
        stage, fraction = event
        self.progress.value = round(100 * min(max(fraction, 0.0), 1.0))
        self.status.value = f"{stage} ({100 * fraction:.0f} %)"

    def _on_returned(self, registration: Registration, ir: Image, vis: Image) -> None:
        if self._cancelled:
            return
        if self.infrared_layer.value is not ir or self.visible_layer.value is not vis:
            self.infrared_layer.value, self.visible_layer.value = ir, vis
        try:
            self.apply(registration)
        except _USER_ERRORS as exc:
            show_error(f"napari-resfuse: {exc}")

    def _on_errored(self, exc: Exception) -> None:
        if self._cancelled:  # the estimator stopping on request is not an error
            return
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
        except _USER_ERRORS as exc:
            show_error(f"napari-resfuse: {exc}")
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
        except _USER_ERRORS as exc:
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
        except _USER_ERRORS as exc:
            show_error(f"napari-resfuse: {exc}")
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
        except _USER_ERRORS as exc:
            show_error(f"napari-resfuse: {exc}")
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
