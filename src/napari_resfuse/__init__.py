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
    "imagenet_weights_file",
    "iter_fuse",
    "load_sample",
    "make_sample_pair",
]
