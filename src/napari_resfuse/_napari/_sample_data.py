"""npe2 sample data: the bundled synthetic infrared/visible pair (no network needed)."""

from __future__ import annotations

from typing import Any

from ..sample import load_sample, load_unaligned_sample

__all__ = ["sample_pair", "sample_unaligned_pair"]


def sample_pair() -> list[tuple[Any, dict[str, Any], str]]:
    """The bundled street scene as two Image layers, ``visible`` (grey) and ``infrared``.

    The infrared layer uses the ``inferno`` colormap with additive blending over the grey
    visible layer, so that both show until the fused layer is added on top.
    """
    infrared, visible = load_sample()
    return [
        (visible, {"name": "visible", "colormap": "gray", "contrast_limits": (0, 255)}, "image"),
        (
            infrared,
            {
                "name": "infrared",
                "colormap": "inferno",
                "contrast_limits": (0, 255),
                "blending": "additive",
                "opacity": 0.7,
            },
            "image",
        ),
    ]


def sample_unaligned_pair() -> list[tuple[Any, dict[str, Any], str]]:
    """The street scene as an unaligned camera pair: ``visible`` (240 × 320) and
    ``infrared (unaligned)`` (128 × 160, coarser, rotated by 5° and shifted).

    Both layers have identity transforms, so the overlay shows them misaligned until the
    "Align infrared to visible" widget aligns them. The known transform is in the infrared
    layer's ``metadata["true_registration"]`` (the registration file's JSON content).
    """
    infrared, visible, truth = load_unaligned_sample()
    return [
        (visible, {"name": "visible", "colormap": "gray", "contrast_limits": (0, 255)}, "image"),
        (
            infrared,
            {
                "name": "infrared (unaligned)",
                "colormap": "magma",
                "contrast_limits": (0, 255),
                "blending": "additive",
                "opacity": 0.7,
                "metadata": {"true_registration": truth.to_dict()},
            },
            "image",
        ),
    ]
