"""napari-resfuse: infrared and visible image fusion with ResNet-152 features.

Zhang, Li, Zhu & Du (2022), "An infrared and visible image fusion algorithm based on
ResNet-152", as specified in METHOD.md. This module is the public API; nothing imported here
imports napari or Qt, and torch is imported only when a name that needs it is first used (so
``import napari_resfuse.metrics`` or ``resfuse metrics`` start quickly).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name -> module that defines it (imported on first access, PEP 562).
_EXPORTS = {
    "fuse": ".method.fuse",
    "iter_fuse": ".method.fuse",
    "FusionResult": ".method.fuse",
    "FusionCancelled": ".method.fuse",
    "Progress": ".method.fuse",
    "STAGES": ".method.fuse",
    "WeightsNotAvailableError": ".method.backbones",
    "clear_cache": ".method.backbones",
    "imagenet_weights_file": ".method.backbones",
    "FusionOptions": ".options",
    "LEVELS": ".options",
    "load_sample": ".sample",
    "make_sample_pair": ".sample",
    "fuse_lazy": ".lazy",
    "LazyFusion": ".lazy",
    "save_lazy": ".lazy",
    "open_stack": ".stacks",
    "run_batch": ".batch",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'napari_resfuse' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def fuse_layers(viewer, infrared, visible, **options):
    """Fuse two image layers of a napari viewer and add the outputs as layers.

    The same outputs as the "Fuse infrared + visible" widget, run synchronously (for scripts
    and notebooks). ``infrared`` and ``visible`` are layers or layer names; ``options`` are
    those of :func:`fuse`. Returns the added or updated layers. Imports napari on first use.
    """
    from ._napari.layers import fuse_layers as _fuse_layers

    return _fuse_layers(viewer, infrared, visible, **options)


__all__ = ["__version__", "fuse_layers", *_EXPORTS]
