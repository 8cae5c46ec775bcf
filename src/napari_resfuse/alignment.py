"""One registration for a whole run (a fixed rig): what ``fuse_lazy``, ``run_batch`` and
``compare`` do with their ``registration=`` argument.

:class:`Alignment` holds the registration, the grid and the crop of a run, resolved and checked
before any work: a registration file is read, and a rig is bound to (or checked against) the
stacks' frame shapes or the first pair's shapes, so that a file for other shapes fails at once,
in one line. Each pair or plane is then aligned by
:func:`napari_resfuse.register._apply.align_pair`, as :func:`napari_resfuse.fuse` aligns it.
No napari, no Qt; torch is not imported.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .method.inputs import spatial_shape

__all__ = ["Alignment"]


class Alignment:
    """The registration, grid and crop of a run.

    Attributes
    ----------
    registration : Registration or "auto"
        A :class:`~napari_resfuse.register.Registration` (bound to the image shapes once
        checked), or ``"auto"``: each pair is registered on its own (:meth:`for_pairs`).
    grid : {"visible", "infrared"}
    crop : {"overlap", None}
    """

    def __init__(self, registration, grid: str = "visible", crop: str | None = "overlap"):
        from .register._apply import check_grid_crop

        check_grid_crop(grid, crop)
        if isinstance(registration, str | os.PathLike) and registration != "auto":
            from .register import Registration

            registration = Registration.load(registration)
        self.registration = registration
        self.grid = grid
        self.crop = crop

    @property
    def auto(self) -> bool:
        return isinstance(self.registration, str)

    def _bind(self, frames, infrared=None, visible=None, where: str = "") -> None:
        """Bind the registration to the two ``(H, W)`` (``"auto"``: register the images)."""
        from .register._apply import resolve_registration

        try:
            self.registration = resolve_registration(self.registration, *frames, infrared, visible)
        except ValueError as exc:
            if not where:
                raise
            raise type(exc)(f"{where}: {exc}") from None

    @classmethod
    def for_pairs(cls, registration, pairs, *, grid="visible", crop="overlap") -> Alignment:
        """For a folder of pairs (:class:`napari_resfuse.io.Pairs`): a rig is checked against
        the first pair's shapes (read here); another pair of other shapes fails alone, when it
        is fused. ``"auto"`` stays ``"auto"``: each pair is registered when fused."""
        alignment = cls(registration, grid, crop)
        if not alignment.auto and len(pairs):
            from .io import read_image

            name, ir_path, vis_path = pairs[0]
            ir, vis = read_image(ir_path), read_image(vis_path)
            frames = [spatial_shape(image.shape)[-2:] for image in (ir, vis)]
            alignment._bind(frames, where=f"pair {name!r}")
        return alignment

    @classmethod
    def for_stacks(cls, registration, ir, vis, *, grid="visible", crop="overlap") -> Alignment:
        """For two stacks ``(..., H, W[, 3])`` (array-likes) of any frame sizes and the same
        stack axes; ``"auto"`` registers the first planes, once, for the whole stack."""
        alignment = cls(registration, grid, crop)
        ir_spatial, vis_spatial = spatial_shape(ir.shape), spatial_shape(vis.shape)
        if ir_spatial[:-2] != vis_spatial[:-2]:
            raise ValueError(
                f"infrared {tuple(ir.shape)} and visible {tuple(vis.shape)} have different "
                f"stack axes ({ir_spatial[:-2]} vs {vis_spatial[:-2]}): one registration "
                "applies plane by plane to stacks of the same length"
            )
        frames = (ir_spatial[-2:], vis_spatial[-2:])
        if alignment.auto:
            first = (0,) * (len(ir_spatial) - 2)
            alignment._bind(frames, np.asarray(ir[first]), np.asarray(vis[first]))
        else:  # no pixels needed
            alignment._bind(frames)
        return alignment

    @property
    def fuse_kwargs(self) -> dict[str, Any]:
        """The keywords of :func:`napari_resfuse.fuse` for this alignment."""
        return {"registration": self.registration, "grid": self.grid, "crop": self.crop}

    @property
    def key(self) -> dict[str, Any]:
        """JSON values that identify the alignment (a run's resumption key)."""
        rig = "auto" if self.auto else json.loads(self.registration.to_json())
        return {"registration": rig, "grid": self.grid, "crop": self.crop}

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(H, W)`` of an aligned plane: the overlap's rectangle, or the grid's frame."""
        reg = self.registration
        if self.crop == "overlap":
            r0, c0, r1, c1 = reg.overlap_box(self.grid)
            return (r1 - r0, c1 - c0)
        return tuple(reg.visible_shape if self.grid == "visible" else reg.infrared_shape)

    @property
    def valid(self) -> np.ndarray | None:
        """Where both images see the scene, with ``crop=None``; None once cropped."""
        if self.crop == "overlap":
            return None
        reg = self.registration
        return (reg.valid if self.grid == "visible" else reg.valid_infrared).copy()

    @property
    def params(self) -> dict[str, Any]:
        """``params["registration"]`` of :func:`~napari_resfuse.fuse` for this alignment."""
        from .register._apply import alignment_params

        return alignment_params(self.registration, self.grid, self.crop)

    def align(self, infrared, visible, value_range=None):
        """Both images on one grid (:class:`~napari_resfuse.register._apply.AlignedPair`), each
        scaled by its unaligned image's range unless ``value_range`` fixes them (a stack's)."""
        from .register._apply import align_pair

        return align_pair(
            infrared,
            visible,
            self.registration,
            grid=self.grid,
            crop=self.crop,
            value_range=value_range,
        )

    def apply(self, ir, vis, value_range) -> tuple[np.ndarray, np.ndarray]:
        """Both blocks of a stack on one grid, scaled by the unaligned stacks' ranges."""
        aligned = self.align(ir, vis, value_range)
        return aligned.infrared, aligned.visible

    def __repr__(self) -> str:
        return f"Alignment({self.registration!r}, grid={self.grid!r}, crop={self.crop!r})"
