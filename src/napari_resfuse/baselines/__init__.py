"""Classic fusion baselines to compare the method with.

Every baseline is a function ``(infrared, visible, **params) -> fused``: two 2-D images of the same
shape (``uint8``, divided by 255, or float in ``[0, 1]``) in, a float32 image of that shape out
(unclipped). Defaults are each paper's, or its authors' published code's where they released it.
The classic baselines are pure numpy/scipy; the two deep-feature baselines (``vgg19_li2018``,
``resnet50_zca``) live in :mod:`napari_resfuse.baselines.deep`, which needs torch and is
imported on their first call, so importing this package never imports torch, napari or Qt.

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
    "DEEP_BASELINES",
    "average",
    "cbf",
    "cross_bilateral_filter",
    "gff",
    "guided_filter",
    "resnet50_zca",
    "two_scale_max",
    "vgg19_li2018",
    "wls",
]


def vgg19_li2018(infrared, visible, **params) -> np.ndarray:
    """Li, Wu & Kittler (2018) VGG-19 fusion; see
    :func:`napari_resfuse.baselines.deep.vgg19_li2018`.

    Imports torch on first call.
    """
    from .deep import vgg19_li2018 as _vgg19_li2018

    return _vgg19_li2018(infrared, visible, **params)


def resnet50_zca(infrared, visible, **params) -> np.ndarray:
    """Li, Wu & Durrani (2019) ResNet-50 + ZCA fusion; see
    :func:`napari_resfuse.baselines.deep.resnet50_zca`.

    Imports torch on first call.
    """
    from .deep import resnet50_zca as _resnet50_zca

    return _resnet50_zca(infrared, visible, **params)


#: Name → fusion function.
BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "average": average,
    "two_scale_max": two_scale_max,
    "gff": gff,
    "cbf": cbf,
    "wls": wls,
    "vgg19_li2018": vgg19_li2018,
    "resnet50_zca": resnet50_zca,
}

#: The baselines that run a pretrained network (they take ``weights``, ``seed`` and ``device``).
DEEP_BASELINES: tuple[str, ...] = ("vgg19_li2018", "resnet50_zca")
