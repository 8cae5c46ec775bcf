"""Registration of an infrared image onto a visible image's pixel grid (no napari, no Qt).

- :func:`register`: automatic multimodal registration (see ``_auto`` for the estimator).
- :func:`register_landmarks`: least squares from corresponding ``(row, col)`` points.
- :class:`Registration`: the 3 × 3 matrix (visible pixel → infrared pixel, napari's
  ``(row, col)`` order), the two image shapes, ``warp``, ``valid``, ``overlap`` and a
  versioned JSON file format (``save`` / ``load``).

``napari_resfuse.fuse(infrared, visible, registration=...)`` applies one before fusing.
"""

from __future__ import annotations

from ._geometry import largest_rectangle
from ._landmarks import MIN_POINTS, register_landmarks
from ._register import MIN_OVERLAP, register
from ._registration import (
    FORMAT,
    MODELS,
    VERSION,
    Registration,
    RegistrationCancelled,
    RegistrationError,
)

__all__ = [
    "FORMAT",
    "MIN_OVERLAP",
    "MIN_POINTS",
    "MODELS",
    "VERSION",
    "Registration",
    "RegistrationCancelled",
    "RegistrationError",
    "largest_rectangle",
    "register",
    "register_landmarks",
]
