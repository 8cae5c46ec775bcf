"""Classic fusion baselines to compare the method with.

Every baseline is a function ``(infrared, visible, **params) -> fused``: two 2-D images of the same
shape (``uint8``, divided by 255, or float in ``[0, 1]``) in, a float32 image of that shape out
(unclipped). Defaults are each paper's, or its authors' published code's where they released it.
Pure numpy/scipy: nothing here imports torch, napari or Qt.

``BASELINES`` maps a method name (as used by ``resfuse compare --methods``) to its function.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .cbf import cbf, cross_bilateral_filter
from .gff import gff, guided_filter
from .simple import average, two_scale_max
from .wls import wls

__all__ = [
    "BASELINES",
    "average",
    "cbf",
    "cross_bilateral_filter",
    "gff",
    "guided_filter",
    "two_scale_max",
    "wls",
]

#: Name → fusion function. The engine-based baselines (``vgg19_li2018``, ``resnet50_zca``) are
#: registered here too once they exist; they live in their own modules because they need torch.
BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "average": average,
    "two_scale_max": two_scale_max,
    "gff": gff,
    "cbf": cbf,
    "wls": wls,
}
