"""Reading the input layers of a run: which layers, their shapes, their value ranges, the options.

Shared by the in-memory path (:mod:`~napari_resfuse._napari.layers`), the lazy path
(:mod:`~napari_resfuse._napari.lazy_layers`) and the widgets. Imports neither torch nor Qt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..options import FusionOptions

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Image

    from ..register import Registration

__all__ = [
    "coerce_options",
    "contrast_range",
    "fusion_value_range",
    "grid_layer",
    "resolve_layer",
    "resolve_pair",
    "spatial_shape",
]


def resolve_layer(
    viewer: napari.Viewer | None,
    layer: Any,
    role: str,
    *,
    multiscale_advice: str = "fuse one resolution level (add it as its own layer) instead",
) -> Image:
    """``layer`` (an Image layer, or its name in ``viewer``) checked to be a single-scale Image
    layer; ``ValueError`` naming ``role`` and the layer otherwise (for a multiscale layer,
    followed by ``multiscale_advice``)."""
    from napari.layers import Image

    if layer is None:
        raise ValueError(f"{role}: choose an Image layer")
    if isinstance(layer, str):
        if viewer is None:
            raise ValueError(f"{role} is a layer name ({layer!r}) but no viewer was given")
        if layer not in viewer.layers:
            names = ", ".join(repr(lay.name) for lay in viewer.layers) or "none"
            raise ValueError(f"{role}: there is no layer named {layer!r} (layers: {names})")
        layer = viewer.layers[layer]
    if not isinstance(layer, Image):
        kind = type(layer).__name__
        name = getattr(layer, "name", None)
        raise ValueError(
            f"{role} must be an Image layer or an Image layer's name, got {kind} {name!r}"
        )
    if layer.multiscale:
        raise ValueError(f"{role} layer {layer.name!r} is multiscale: {multiscale_advice}")
    return layer


def spatial_shape(layer: Image) -> tuple[int, ...]:
    """The layer's shape without its RGB(A) channel axis."""
    shape = tuple(np.shape(layer.data))
    return shape[:-1] if layer.rgb else shape


def contrast_range(layer: Image, role: str | None = None) -> tuple[float, float]:
    """The layer's contrast limits ``(low, high)``, which map its values to ``[0, 1]`` for
    anything but ``uint8`` data (METHOD.md, Inputs); ``ValueError`` naming the layer (and its
    ``role``) unless ``low < high``, both finite."""
    low, high = (float(v) for v in layer.contrast_limits)
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        which = f"{role} layer" if role else "layer"
        raise ValueError(
            f"{which} {layer.name!r} has contrast limits ({low:g}, {high:g}): they scale its "
            "values to [0, 1], so set limits with low < high"
        )
    return (low, high)


def fusion_value_range(layer: Image, dtype: Any, role: str) -> tuple[float, float]:
    """METHOD.md, Inputs: ``uint8`` is divided by 255, anything else scaled by the layer's
    contrast limits (:func:`contrast_range`)."""
    if np.dtype(dtype) == np.uint8:
        return (0.0, 255.0)
    return contrast_range(layer, role)


def coerce_options(options: FusionOptions | None, overrides: dict[str, Any]) -> FusionOptions:
    """``options`` (default: the defaults) with ``overrides`` applied to single fields."""
    # The one "options or overrides" block of _napari; FusionOptions.coerce is to replace it.
    opts = options if options is not None else FusionOptions()
    if not isinstance(opts, FusionOptions):
        raise ValueError(f"options must be a FusionOptions, got {type(opts).__name__}")
    if overrides:
        opts = opts.replace(**overrides)
    return opts


def resolve_pair(
    viewer: napari.Viewer | None,
    infrared: Any,
    visible: Any,
    options: FusionOptions | None,
    overrides: dict[str, Any],
) -> tuple[Image, Image, FusionOptions, Registration | None]:
    """The two input layers, the run's options and how the layers overlay.

    The last item is None when both layers have the same shape and world transform (fused
    pixel for pixel), else the :class:`~napari_resfuse.register.Registration` onto the visible
    layer's grid that their transforms describe; the layers are checked by the one rule of
    :func:`~napari_resfuse._napari._alignment.layer_registration` (``ValueError`` naming both
    layers otherwise).
    """
    from ._alignment import layer_registration

    ir_layer = resolve_layer(viewer, infrared, "infrared")
    vis_layer = resolve_layer(viewer, visible, "visible")
    registration = layer_registration(ir_layer, vis_layer)
    return ir_layer, vis_layer, coerce_options(options, overrides), registration


def grid_layer(infrared: Image, visible: Image, registration: Registration | None) -> Image:
    """The input layer on whose data grid a run's outputs lie, and whose transform they take:
    the visible layer when the infrared one is resampled onto it (``registration`` from
    :func:`resolve_pair`), else the infrared layer (both have the same transform then)."""
    return infrared if registration is None else visible
