"""Everything that imports napari or Qt: widgets, layers, sample data, the viewer demo.

Importing this package keeps ``triton`` out of the process when it is not loaded yet. torch
pulls triton in through torchvision, and loading triton's own LLVM after a Mesa OpenGL context
(llvmpipe, and other Mesa drivers) exists crashes the process with a segmentation fault; in
napari our modules are imported after the viewer has created its canvas. The fusion never
needs triton (it uses no ``torch.compile``). Set ``NAPARI_RESFUSE_ALLOW_TRITON=1`` to keep
triton importable (e.g. to use ``torch.compile`` in the same napari session on a GPU driver
that does not clash).
"""

import os
import sys

if "triton" not in sys.modules and not os.environ.get("NAPARI_RESFUSE_ALLOW_TRITON"):
    sys.modules["triton"] = None  # ``import triton`` now raises ImportError; torch copes
