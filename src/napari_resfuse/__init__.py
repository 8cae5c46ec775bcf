"""napari-resfuse: infrared and visible image fusion with ResNet-152 features.

Zhang, Li, Zhu & Du (2022), "An infrared and visible image fusion algorithm based on
ResNet-152", as specified in METHOD.md. This module is the public API; nothing imported here
imports napari or Qt, and torch is imported only when a name that needs it is first used (so
``import napari_resfuse.metrics`` or ``resfuse metrics`` start quickly): the names below are
attached lazily by ``lazy_loader`` (SPEC 1).
"""

from __future__ import annotations

import lazy_loader

__version__ = "0.1.0"

# Public name -> module that defines it (imported on first access).
_EXPORTS = {
    "method.fuse": [
        "fuse",
        "iter_fuse",
        "run_with_progress",
        "FusionResult",
        "FusionCancelled",
        "NonFiniteResultError",
        "Progress",
        "STAGES",
    ],
    "method.backbones": ["WeightsNotAvailableError", "clear_cache", "imagenet_weights_file"],
    "options": ["FusionOptions", "LEVELS"],
    "sample": ["load_sample", "make_sample_pair"],
    "lazy": ["fuse_lazy", "LazyFusion", "save_lazy"],
    "stacks": ["open_stack"],
    "batch": ["run_batch"],
}

__getattr__, _lazy_dir, _lazy_all = lazy_loader.attach(__name__, submod_attrs=_EXPORTS)


def fuse_layers(viewer, infrared, visible, **options):
    """Fuse two image layers of a napari viewer and add the outputs as layers.

    The same outputs as the "Fuse infrared + visible" widget, run synchronously (for scripts
    and notebooks). ``infrared`` and ``visible`` are layers or layer names; ``options`` are
    those of :func:`fuse`. Returns the added or updated layers. Imports napari on first use.
    """
    from ._napari.layers import fuse_layers as _fuse_layers

    return _fuse_layers(viewer, infrared, visible, **options)


__all__ = ["__version__", "fuse_layers", *(name for names in _EXPORTS.values() for name in names)]


def __dir__() -> list[str]:
    return sorted(__all__)
