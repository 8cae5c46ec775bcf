"""Layer transforms and registrations: from one to the other (no widgets here).

napari places a layer by its data → world transform (``affine`` after ``scale``, ``translate``,
``rotate``, ``shear``). Two Image layers whose world transforms differ overlay as a
:class:`~napari_resfuse.register.Registration` says: visible pixel ``v`` and infrared pixel
``inv(W_ir) · W_vis · v`` show at the same world point. :func:`apply_registration` writes one
into the infrared layer's ``affine``; :func:`layer_registration` reads it back for fusing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from napari.utils.transforms import CompositeAffine

from ..register import Registration, RegistrationError

if TYPE_CHECKING:  # pragma: no cover
    from napari.layers import Image

__all__ = [
    "METADATA_KEY",
    "apply_registration",
    "data_to_world",
    "first_plane",
    "layer_registration",
    "registration_from_layers",
    "spatial_shape",
]

METADATA_KEY = "registration"
_IR_COLORMAP = "magma"


def data_to_world(layer) -> np.ndarray:
    """The layer's full data → world matrix, ``(ndim + 1)²`` (its affine after its scale,
    translate, rotate and shear)."""
    physical = CompositeAffine(
        scale=layer.scale,
        translate=layer.translate,
        rotate=layer.rotate,
        shear=layer.shear,
        ndim=layer.ndim,
    ).affine_matrix
    return np.asarray(layer.affine.affine_matrix, float) @ physical


def _spatial(matrix: np.ndarray) -> np.ndarray:
    """The 3 × 3 block of a homogeneous matrix acting on the last two axes."""
    n = matrix.shape[0] - 1
    idx = [n - 2, n - 1, n]
    return matrix[np.ix_(idx, idx)]


def spatial_shape(layer: Image) -> tuple[int, int]:
    """``(height, width)`` of an Image layer (the axes before an RGB channel axis)."""
    shape = tuple(int(s) for s in np.shape(layer.data))
    return shape[-3:-1] if layer.rgb else shape[-2:]


def first_plane(layer: Image) -> np.ndarray:
    """The layer's first 2-D plane (RGB kept), read without loading a whole lazy stack."""
    data = layer.data
    lead = data.ndim - (3 if layer.rgb else 2)
    return np.asarray(data[(0,) * lead] if lead > 0 else data)


def registration_from_layers(infrared: Image, visible: Image) -> Registration:
    """The registration that the two layers' world transforms describe (visible pixel →
    infrared pixel, on the last two axes): ``inv(W_ir) · W_vis``."""
    w_ir, w_vis = _spatial(data_to_world(infrared)), _spatial(data_to_world(visible))
    matrix = np.linalg.solve(w_ir, w_vis)
    model = "affine" if np.allclose(matrix[2], (0, 0, 1)) else "projective"
    if model == "affine":
        matrix[2] = (0.0, 0.0, 1.0)
    return Registration(
        matrix,
        model=model,
        infrared_shape=spatial_shape(infrared),
        visible_shape=spatial_shape(visible),
    )


def _nearest_affine(reg: Registration) -> tuple[np.ndarray, float]:
    """The least-squares affine approximation of a projective registration over the visible
    frame, and its largest deviation there (infrared px)."""
    h, w = reg.visible_shape
    rr, cc = np.meshgrid(np.linspace(0, h - 1, 9), np.linspace(0, w - 1, 9), indexing="ij")
    pts = np.c_[rr.ravel(), cc.ravel()]
    exact = reg.to_infrared(pts)
    design = np.c_[pts, np.ones(len(pts))]
    params = np.linalg.lstsq(design, exact, rcond=None)[0]
    matrix = np.vstack([params.T, [0.0, 0.0, 1.0]])
    deviation = float(np.sqrt(((design @ params - exact) ** 2).sum(axis=1)).max())
    return matrix, deviation


def _world_matrix_for(infrared: Image, visible: Image, matrix: np.ndarray) -> np.ndarray:
    """The infrared layer's ``affine`` that puts infrared pixel p where the visible layer
    shows visible pixel ``inv(matrix) p``."""
    n_ir = infrared.ndim
    w_vis = _spatial(data_to_world(visible))
    target = np.eye(n_ir + 1)  # the infrared layer's wanted data → world
    current = data_to_world(infrared)
    target[: n_ir - 2, : n_ir - 2] = current[: n_ir - 2, : n_ir - 2]  # leading axes: as they are
    target[: n_ir - 2, n_ir] = current[: n_ir - 2, n_ir]
    idx = [n_ir - 2, n_ir - 1, n_ir]
    target[np.ix_(idx, idx)] = w_vis @ np.linalg.inv(matrix)
    physical = CompositeAffine(
        scale=infrared.scale,
        translate=infrared.translate,
        rotate=infrared.rotate,
        shear=infrared.shear,
        ndim=n_ir,
    ).affine_matrix
    return target @ np.linalg.inv(physical)


def apply_registration(
    infrared: Image, visible: Image, registration: Registration, viewer=None
) -> str | None:
    """Show ``registration`` in the viewer: write the infrared layer's ``affine`` and
    ``metadata["registration"]``, give it a colormap and additive blending and put it above
    the visible layer. Returns a note for the user (a projective model is shown by its nearest
    affine: napari layers transform affinely), else None. The visible layer is untouched."""
    registration.check_shapes(spatial_shape(infrared), spatial_shape(visible))
    matrix, note = registration.matrix, None
    if registration.model == "projective":
        matrix, deviation = _nearest_affine(registration)
        note = (
            "the overlay shows the nearest affine transform (napari layers are affine): up to "
            f"{deviation:.2f} infrared px from the projective registration, which is kept in "
            "the layer's metadata and in saved files"
        )
    infrared.affine = _world_matrix_for(infrared, visible, matrix)
    infrared.metadata = {**infrared.metadata, METADATA_KEY: registration.to_dict()}
    if not infrared.rgb:
        infrared.colormap = _IR_COLORMAP
    infrared.blending = "additive"
    if viewer is not None:
        layers = viewer.layers
        if infrared in layers and visible in layers:
            i, v = layers.index(infrared), layers.index(visible)
            if i < v:
                layers.move(i, v)  # just above the visible layer
    return note


def layer_registration(infrared: Image, visible: Image) -> Registration | None:
    """How the two layers overlay, for fusing them on the visible layer's grid.

    None (fuse pixel ``(r, c)`` with pixel ``(r, c)``, as always) when their world transforms
    are equal, or when both have the same shape and the infrared layer carries no
    registration. Otherwise the registration their transforms describe: the one in the
    infrared layer's ``metadata["registration"]`` (from the "Align infrared to visible"
    widget or a loaded file) while the transforms still show it, exact (a projective one
    included), else the one derived from the transforms.
    """
    w_ir, w_vis = data_to_world(infrared), data_to_world(visible)
    if w_ir.shape == w_vis.shape and np.allclose(w_ir, w_vis, rtol=0, atol=1e-9):
        return None
    stored = infrared.metadata.get(METADATA_KEY)
    same_shape = np.shape(infrared.data) == np.shape(visible.data)
    if same_shape and not isinstance(stored, dict):
        return None
    derived = registration_from_layers(infrared, visible)
    if isinstance(stored, dict):
        try:
            exact = Registration.from_dict(stored)
            exact.check_shapes(spatial_shape(infrared), spatial_shape(visible))
        except (ValueError, RegistrationError):
            return derived
        shown = _nearest_affine(exact)[0] if exact.model == "projective" else exact.matrix
        if np.allclose(shown, derived.matrix, rtol=1e-6, atol=1e-6):
            return exact
    return derived
