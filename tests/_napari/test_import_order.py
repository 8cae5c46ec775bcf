"""Opening the widget after the viewer exists must not crash the process.

torchvision imports triton, whose LLVM clashes with Mesa's OpenGL (llvmpipe) once a GL context
exists; `napari_resfuse._napari` keeps triton out. The crash kills the interpreter, so the
scenario runs in a subprocess (on the display the suite runs under, e.g. xvfb-run).
"""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import sys
import napari
viewer = napari.Viewer(show=False)
assert "torch" not in sys.modules or "triton" not in sys.modules
viewer.window.add_plugin_dock_widget("napari-resfuse", "Fuse infrared + visible")
from napari_resfuse import fuse, load_sample
ir, vis = load_sample()
print(fuse(ir[:64, :64], vis[:64, :64], weights="random", layers=("conv1",)).fused.shape)
viewer.close()
"""


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display (run under xvfb-run)")
def test_widget_after_viewer_does_not_crash():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(64, 64)" in proc.stdout
