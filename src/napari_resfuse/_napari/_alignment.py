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
from ._inputs import spatial_shape as stack_shape

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


def _describe(layer: Image, role: str) -> str:
    shape = stack_shape(layer)
    return f"{layer.name!r} ({role}, shape {shape}{', RGB' if layer.rgb else ''})"


def _check_planes(infrared: Image, visible: Image) -> None:
    """Both layers must have the same stack axes, placed alike: the infrared layer is resampled
    plane by plane, so plane k of one must lie on plane k of the other."""
    pair = f"layers {_describe(infrared, 'infrared')} and {_describe(visible, 'visible')}"
    lead_ir = stack_shape(infrared)[:-2]
    lead_vis = stack_shape(visible)[:-2]
    if lead_ir != lead_vis:
        raise ValueError(
            f"{pair} differ in their stack axes ({lead_ir} vs {lead_vis}): fuse stacks of the "
            "same number of planes"
        )
    n = infrared.ndim
    if n == 2:
        return
    mapping = np.linalg.solve(data_to_world(infrared), data_to_world(visible))
    lead, space = slice(0, n - 2), slice(n - 2, n)
    planes_kept = (
        np.allclose(mapping[lead, lead], np.eye(n - 2), atol=1e-9)
        and np.allclose(mapping[lead, space], 0.0, atol=1e-9)
        and np.allclose(mapping[space, lead], 0.0, atol=1e-9)
        and np.allclose(mapping[lead, n], 0.0, atol=1e-9)
    )
    if not planes_kept:
        raise ValueError(
            f"{pair}: their transforms place the planes of the stacks differently (scale, "
            "translate, rotate, shear or affine on the stack axes): the infrared layer is "
            "resampled plane by plane, so give both layers the same transform on the stack axes"
        )


def layer_registration(infrared: Image, visible: Image) -> Registration | None:
    """How two Image layers overlay, for fusing them: the one rule of
    :func:`~napari_resfuse.fuse_layers`, the fusion widget and lazy layers.

    - Same shape and same world transform (:func:`data_to_world`): None; pixel ``(r, c)`` is
      fused with pixel ``(r, c)``, as always, and the outputs take the infrared layer's
      transform.
    - Otherwise the registration (visible pixel → infrared pixel) that their world transforms
      (scale, translate, rotate, shear, affine) describe: the one in the infrared layer's
      ``metadata["registration"]`` (the "Align infrared to visible" widget, a loaded file)
      while the transforms still show it, exact (a projective one included), else
      ``inv(W_ir) · W_vis`` (:func:`registration_from_layers`). The infrared layer is then
      resampled onto the visible layer's grid and the outputs take the visible layer's
      transform.

    Raises
    ------
    ValueError
        Naming both layers: different shapes under the same transform with no registration
        (nothing says how they overlay: align them first); different stack axes, or
        transforms that place the planes of two stacks differently; transforms under which
        the layers do not overlap at all.
    """
    pair = f"layers {_describe(infrared, 'infrared')} and {_describe(visible, 'visible')}"
    w_ir, w_vis = data_to_world(infrared), data_to_world(visible)
    same_transform = w_ir.shape == w_vis.shape and np.allclose(w_ir, w_vis, rtol=0, atol=1e-9)
    if same_transform and stack_shape(infrared) == stack_shape(visible):
        return None
    if infrared.ndim != visible.ndim:
        raise ValueError(
            f"{pair} differ in their number of dimensions ({infrared.ndim} vs {visible.ndim}): "
            "fuse two images, or two stacks of the same number of planes"
        )
    _check_planes(infrared, visible)
    derived = registration_from_layers(infrared, visible)
    found = _stored_registration(infrared, visible, derived) or (
        None if same_transform else derived
    )
    if found is None:
        raise ValueError(
            f"{pair} differ in shape and their transforms are the same, so nothing says how "
            "they overlay: pick two layers with the same height, width and number of planes, "
            "or align them first ('Align infrared to visible', or set the infrared layer's "
            "scale, translate, rotate or affine)"
        )
    if found.overlap <= 0.0:
        raise ValueError(
            f"{pair} do not overlap: their transforms place the infrared layer outside the "
            "visible layer's frame, so there is nothing to fuse (check the layers' scale, "
            "translate, rotate, shear and affine)"
        )
    return found


def _stored_registration(
    infrared: Image, visible: Image, derived: Registration
) -> Registration | None:
    """The infrared layer's stored registration if it fits these layers and their transforms
    still show it (a projective one by its nearest affine); else None."""
    stored = infrared.metadata.get(METADATA_KEY)
    if not isinstance(stored, dict):
        return None
    try:
        exact = Registration.from_dict(stored)
        exact.check_shapes(spatial_shape(infrared), spatial_shape(visible))
    except (ValueError, RegistrationError):
        return None
    shown = _nearest_affine(exact)[0] if exact.model == "projective" else exact.matrix
    return exact if np.allclose(shown, derived.matrix, rtol=1e-6, atol=1e-6) else None
