"""The "Fuse infrared + visible" dock widget.

A magicgui :class:`~magicgui.widgets.Container` whose fields are the options of
:class:`~napari_resfuse.FusionOptions` (defaults read from it, never repeated here). A run reads
the layers in the main thread (:func:`~napari_resfuse._napari.layers.prepare_job`), fuses in a
thread worker (:class:`~napari_resfuse._napari._dock.DockWidget`) that yields
:class:`~napari_resfuse.Progress` after each stage, and adds
the layers in the main thread when the worker returns. Cancelling asks the worker to stop at the
next stage; a cancelled run adds nothing.
"""

from __future__ import annotations

import warnings
from typing import Any

import napari
import torch
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    PushButton,
    Select,
    SpinBox,
)
from napari.utils.notifications import show_info
from psygnal import Signal
from superqt.utils import GeneratorWorker

from ..method.fuse import FusionResult, Progress
from ..options import BACKBONES, NORMS, VARIANTS, FusionOptions
from ._dock import USER_AND_FILE_ERRORS, DockWidget
from ._layer_specs import DEFAULT_OUTPUTS, OUTPUTS, add_or_update_layers
from .layers import FusionJob, fusion_steps, prepare_job, result_layer_data

__all__ = ["FusionWidget", "device_choices"]

_WEIGHTS_CHOICES = (
    ("ImageNet (pretrained)", "imagenet"),
    ("file…", "file"),
    ("random (testing only)", "random"),
)


def device_choices() -> list[str]:
    """Devices this machine offers: ``auto``, ``cpu``, each CUDA device, ``mps``."""
    choices = ["auto", "cpu"]
    if torch.cuda.is_available():
        choices += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        choices.append("mps")
    return choices


def _available_levels(options: FusionOptions) -> tuple[str, ...]:
    """Every feature level of ``options``' backbone (the default ``layers`` take them all)."""
    return FusionOptions(backbone=options.backbone, variant=options.variant).layers


class FusionWidget(DockWidget):
    """Fuse two Image layers with the ResNet-152 method, in a thread worker.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose Image layers are offered and which receives the outputs.

    Notes
    -----
    The fields map onto :class:`~napari_resfuse.FusionOptions` (:meth:`get_options`,
    :meth:`set_options`); options that have no field (``color``, ``batch_size``, ...) keep the
    values last given to :meth:`set_options`, or their defaults. The Run button becomes Cancel
    while a run is in progress; :meth:`run` while one is running is refused with a notification.
    """

    _user_errors = USER_AND_FILE_ERRORS
    _cancelling_text = "cancelling: stops after the current stage"
    _cancelled_text = "cancelled: no layers added"

    #: Emitted in the main thread with each :class:`~napari_resfuse.Progress` of a run.
    progressed = Signal(object)
    #: Emitted in the main thread when a run has ended (done, cancelled or failed).
    run_finished = Signal()

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, button="Run", start=self.run, task="fusion")
        self._options = FusionOptions()
        #: The layers the last completed run added or updated.
        self.last_layers: list = []
        #: The worker computing metrics for "store metrics" (None before the first).
        self.metrics_worker = None

        defaults = self._options
        self.infrared_base = FloatSpinBox(
            label="λ₁ infrared base", value=defaults.base_weights[0], min=0.0, max=10.0, step=0.05
        )
        self.visible_base = FloatSpinBox(
            label="λ₂ visible base", value=defaults.base_weights[1], min=0.0, max=10.0, step=0.05
        )
        self.kernel_size = SpinBox(
            label="box filter size", value=defaults.kernel_size, min=3, max=1001, step=2
        )
        self.levels = Select(
            label="levels", choices=_available_levels(defaults), value=defaults.layers
        )
        self.levels.native.setMaximumHeight(110)
        self.norm = ComboBox(label="norm", choices=NORMS, value=defaults.norm)
        self.backbone = ComboBox(label="backbone", choices=BACKBONES, value=defaults.backbone)
        self.variant = ComboBox(label="variant", choices=VARIANTS, value=defaults.variant)
        self.weights = ComboBox(label="weights", choices=_WEIGHTS_CHOICES)
        self.weights_file = FileEdit(label="weights file", mode="r", filter="*.pth *.pt")
        self.seed = SpinBox(label="seed", value=defaults.seed, min=0, max=2**31 - 1)
        self.device = ComboBox(label="device", choices=device_choices(), value="auto")
        self.outputs = {
            kind: CheckBox(text=kind, value=kind in DEFAULT_OUTPUTS, enabled=kind != "fused")
            for kind in OUTPUTS
        }
        self.store_metrics = CheckBox(
            text="store metrics in the fused layer's metadata", value=False
        )
        self.run_button = self.action_button
        self.save_button = PushButton(text="Compute all and save…", visible=False)
        self.status.native.setMinimumHeight(3 * self.status.native.fontMetrics().height())
        self.extend(
            [
                self.infrared_layer,
                self.visible_layer,
                self.infrared_base,
                self.visible_base,
                self.kernel_size,
                self.levels,
                self.norm,
                self.backbone,
                self.variant,
                self.weights,
                self.weights_file,
                self.seed,
                self.device,
                Container(
                    label="outputs",
                    widgets=list(self.outputs.values()),
                    labels=False,
                    layout="vertical",
                ),
                self.store_metrics,
                self.run_button,
                self.save_button,
                self.progress,
                self.status,
            ]
        )
        self._set_weights(defaults.weights)
        self.weights.changed.connect(self._on_weights_mode)
        self.backbone.changed.connect(lambda *_: self._on_network_changed(variant_changed=False))
        self.variant.changed.connect(lambda *_: self._on_network_changed(variant_changed=True))
        self.save_button.changed.connect(self._on_save_button)
        self._on_weights_mode()

        self._follow_layers()

    # --- options ---------------------------------------------------------------------------
    def _set_weights(self, weights: str) -> None:
        if weights in ("imagenet", "random"):
            self.weights.value = weights
        else:
            self.weights.value = "file"
            self.weights_file.value = weights

    def _on_weights_mode(self, *_: Any) -> None:
        self.weights_file.visible = self.weights.value == "file"
        self.seed.visible = self.weights.value == "random"

    def get_options(self) -> FusionOptions:
        """The options the fields describe (validated: may raise ``ValueError``)."""
        mode = self.weights.value
        if mode == "file":
            path = str(self.weights_file.value or "")
            if not path or path == ".":
                raise ValueError("weights: choose a weights file, or ImageNet / random weights")
            weights = path
        else:
            weights = mode
        return self._options.replace(
            weights=weights,
            seed=int(self.seed.value),
            device=self.device.value,
            kernel_size=int(self.kernel_size.value),
            base_weights=(float(self.infrared_base.value), float(self.visible_base.value)),
            backbone=self.backbone.value,
            variant=self.variant.value,
            layers=tuple(self.levels.value),
            norm=self.norm.value,
        )

    def _on_network_changed(self, variant_changed: bool) -> None:
        """A new backbone or variant: offer (and select) its levels; a new variant also shows
        its default base weights (0.6/0.4 for the paper, 0.5/0.5 for the published code)."""
        try:
            defaults = FusionOptions(backbone=self.backbone.value, variant=self.variant.value)
        except ValueError as exc:  # e.g. vgg19 with the published-code variant
            self.status.value = str(exc)
            return
        self.levels.choices = defaults.layers
        self.levels.value = list(defaults.layers)
        if variant_changed:
            self.infrared_base.value, self.visible_base.value = defaults.base_weights

    def set_options(self, options: FusionOptions | None = None, **changes: Any) -> None:
        """Show ``options`` (with ``changes`` applied) in the fields; keep the rest for runs."""
        if options is not None:
            opts = options
        else:  # start from what the fields show now, so that edits made there are kept
            try:
                opts = self.get_options()
            except ValueError:
                opts = self._options
        if changes:
            opts = opts.replace(**changes)
        if opts.device not in self.device.choices:
            raise ValueError(f"device {opts.device!r} is not one of {self.device.choices}")
        self._options = opts
        self.backbone.value = opts.backbone
        self.variant.value = opts.variant
        self._set_weights(str(opts.weights))
        self.seed.value = opts.seed
        self.device.value = opts.device
        self.kernel_size.value = opts.kernel_size
        self.infrared_base.value, self.visible_base.value = opts.base_weights
        self.levels.choices = _available_levels(opts)
        self.levels.value = list(opts.layers)
        self.norm.value = opts.norm

    @property
    def selected_outputs(self) -> tuple[str, ...]:
        """The outputs whose boxes are ticked (``"fused"`` always is)."""
        return tuple(kind for kind, box in self.outputs.items() if box.value or kind == "fused")

    # --- running (is_running, Run↔Cancel, cancel(), progress: see DockWidget) ----------------
    def run(self) -> GeneratorWorker | None:
        """Start a run in a thread worker; returns the worker, or None if none was started.

        Refused (with a notification) while another run is in progress. Bad layers or options
        are reported as a notification and start nothing. Cancelling stops the run at the next
        stage; a cancelled run adds nothing.
        """
        if self._refused("a fusion is"):
            return None
        if self._run_lazy():
            return None
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                job = prepare_job(
                    self.infrared_layer.value, self.visible_layer.value, self.get_options()
                )
        except USER_AND_FILE_ERRORS as exc:
            self._show_user_error(exc)
            return None
        for warning in caught:
            self._on_warned((warning.message,))

        outputs = self.selected_outputs
        return self._start_run(
            fusion_steps(job),
            yielded=self._on_progress,
            returned=lambda result: self._on_returned(result, job, outputs),
            status=f"fusing {job.names[0]!r} + {job.names[1]!r}…",
        )

    def _run_lazy(self) -> bool:
        """Dask/zarr-backed or very large stacks: add lazy layers (fast, in the main thread)
        instead of a run; the planes are fused as the viewer shows them. True if it did."""
        from .lazy_layers import fuse_layers_lazy, is_lazy_data

        ir, vis = self.infrared_layer.value, self.visible_layer.value
        if ir is None or vis is None or not (is_lazy_data(ir.data) or is_lazy_data(vis.data)):
            return False
        try:
            self.last_layers = fuse_layers_lazy(
                self._viewer, ir, vis, outputs=self.selected_outputs, options=self.get_options()
            )
        except USER_AND_FILE_ERRORS as exc:
            self._show_user_error(exc)
            return True
        self.save_button.visible = True
        self.status.value = (
            "lazy layers added: each plane is fused in the background when shown; "
            "'Compute all and save…' writes every plane"
        )
        return True

    def save_all(self, path) -> GeneratorWorker | None:
        """Compute every plane of the last lazy run and write it to ``path`` (zarr, or TIFF
        for small results) in a thread worker, with progress; :meth:`cancel` stops it and
        removes the partial output. Returns the worker (None if there is nothing to save)."""
        from ..io import output_dtype
        from ..lazy import iter_save_lazy
        from .lazy_layers import lazy_of

        lazy = lazy_of(self.last_layers[0]) if self.last_layers else None
        if lazy is None or self.is_running:
            show_info("napari-resfuse: nothing lazy to save (or a run is in progress)")
            return None
        try:
            runner = iter_save_lazy(lazy, path, dtype=output_dtype(*lazy.input_dtypes))
        except (ValueError, FileExistsError) as exc:
            self._show_user_error(exc)
            return None

        def on_progress(done_total) -> None:
            done, total = done_total
            self._set_progress(done, total)
            self.status.value = f"saving: {done}/{total} planes"

        return self._start_run(
            runner,
            yielded=on_progress,
            returned=lambda out: setattr(self.status, "value", f"saved {out}"),
        )

    def _on_save_button(self, *_: Any) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _filter = QFileDialog.getSaveFileName(
            self.native, "Save all planes", "fused.zarr", "zarr store (*.zarr);;TIFF (*.tif)"
        )
        if path:
            self.save_all(path)

    def _on_progress(self, progress: Progress) -> None:
        self._set_progress(progress.step, progress.total)
        text = f"{progress.stage} ({progress.step}/{progress.total})"
        if progress.n_planes > 1:
            text += f", planes {progress.planes_done}/{progress.n_planes}"
        self.status.value = text
        self.progressed.emit(progress)

    def _on_returned(self, result: FusionResult, job: FusionJob, outputs: tuple[str, ...]):
        if self._cancelled:  # finished before the cancel reached it: still add nothing
            return
        try:
            self.last_layers = add_or_update_layers(
                self._viewer, result_layer_data(result, job, outputs)
            )
        except USER_AND_FILE_ERRORS as exc:
            self._show_user_error(exc)
            return
        seconds = result.timings.get("total", float("nan"))
        note = "" if result.params.get("pretrained", True) else " (random weights: testing only)"
        self.status.value = f"done in {seconds:.1f} s on {result.params['device']}{note}"
        if self.store_metrics.value:
            self._store_metrics(job)

    def _store_metrics(self, job: FusionJob) -> None:
        """Compute the fused layer's metrics in a thread worker; they land in its metadata."""
        from ._metrics_job import store_metrics_in_metadata

        def stored(metrics: dict) -> None:
            self.status.value = f"{self.status.value}; {len(metrics)} metrics stored"

        fused = self.last_layers[0]  # the fused layer always comes first
        self.metrics_worker = self._start_task(
            store_metrics_in_metadata,
            fused,
            job.infrared_layer,
            job.visible_layer,
            returned=stored,
            what="metrics",
        )

    def _on_finished(self) -> None:
        super()._on_finished()
        self.run_finished.emit()
