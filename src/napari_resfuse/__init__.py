"""napari-resfuse: infrared and visible image fusion with ResNet-152 features.

Zhang, Li, Zhu & Du (2022), "An infrared and visible image fusion algorithm based on
ResNet-152", as specified in METHOD.md. This module is the public API; nothing imported here
imports napari or Qt.
"""

__version__ = "0.1.0"

from .method.backbones import WeightsNotAvailableError, clear_cache, imagenet_weights_file
from .method.fuse import STAGES, FusionCancelled, FusionResult, Progress, fuse, iter_fuse
from .options import LEVELS, FusionOptions
from .sample import load_sample, make_sample_pair


def fuse_layers(viewer, infrared, visible, **options):
    """Fuse two image layers of a napari viewer and add the outputs as layers.

    The same outputs as the "Fuse infrared + visible" widget, run synchronously (for scripts
    and notebooks). ``infrared`` and ``visible`` are layers or layer names; ``options`` are
    those of :func:`fuse`. Returns the added or updated layers. Imports napari on first use.
    """
    from ._napari.layers import fuse_layers as _fuse_layers

    return _fuse_layers(viewer, infrared, visible, **options)


__all__ = [
    "LEVELS",
    "STAGES",
    "FusionCancelled",
    "FusionOptions",
    "FusionResult",
    "Progress",
    "WeightsNotAvailableError",
    "__version__",
    "clear_cache",
    "fuse",
    "fuse_layers",
    "imagenet_weights_file",
    "iter_fuse",
    "load_sample",
    "make_sample_pair",
]
