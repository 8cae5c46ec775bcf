"""npe2 sample data: the bundled synthetic infrared/visible pair (no network needed)."""

from __future__ import annotations

from typing import Any

from ..sample import load_sample

__all__ = ["sample_pair"]


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
