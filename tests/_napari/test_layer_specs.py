"""The output layer specs: one torch-free module, the same specs for in-memory and lazy runs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_resfuse._napari._layer_specs import (
    DETAIL_LIMITS,
    MARKER,
    OUTPUTS,
    method_layer_data,
    output_names,
)
from napari_resfuse._napari.layers import FusionJob, result_layer_data
from napari_resfuse._napari.lazy_layers import lazy_layer_data
from napari_resfuse.lazy import fuse_lazy
from tests.conftest import textured_pair

FAST = {"weights": "random", "layers": ("conv1", "conv2_1")}

NO_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError(f"{name} is blocked in this test")

sys.meta_path.insert(0, NoTorch())
import napari_resfuse._napari._layer_specs
import napari_resfuse._napari._inputs
import napari_resfuse._napari.lazy_layers
import napari_resfuse._napari._metrics_widget
assert "torch" not in sys.modules
assert "napari_resfuse._napari.layers" not in sys.modules  # lazy_layers no longer needs it
print("ok")
"""


def test_specs_lazy_layers_and_metrics_widget_import_without_torch():
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"


def test_the_torch_blocker_works():
    """The check above would pass vacuously if blocking failed: importing torch must fail."""
    script = NO_TORCH.split("import napari_resfuse")[0] + "import torch\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode != 0 and "blocked in this test" in proc.stderr


def _same(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray | list | tuple) or isinstance(b, np.ndarray | list | tuple):
        return np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    return a == b


@pytest.mark.parametrize("rgb", [False, True])
def test_in_memory_and_lazy_specs_agree(rgb):
    from napari.layers import Image

    from napari_resfuse import FusionOptions, fuse

    ir, vis = textured_pair()
    if rgb:
        vis = np.stack([vis, vis // 2, 255 - vis], axis=-1)
    ir_layer = Image(ir, name="ir", scale=(0.5, 2.0), translate=(3, -1), units=("mm", "mm"))
    vis_layer = Image(vis, name="vis", rgb=rgb)
    result = fuse(ir, vis, **FAST)
    job = FusionJob(ir_layer, vis_layer, ir, vis, FusionOptions(**FAST), ("ir", "vis"))
    in_memory = result_layer_data(result, job, OUTPUTS)
    lazy_run = fuse_lazy(ir, vis, **FAST)
    lazy = lazy_layer_data(lazy_run, ir_layer, ("ir", "vis"), OUTPUTS)

    names = output_names("ir", "vis")
    expected = [name for kind in OUTPUTS for name in names[kind]]
    assert [kw["name"] for _, kw, _ in in_memory] == expected
    assert [kw["name"] for _, kw, _ in lazy] == expected
    assert [t for *_, t in in_memory] == [t for *_, t in lazy] == ["image"] * 7 + ["labels"] * 2
    assert in_memory[0][1]["rgb"] is lazy[0][1]["rgb"] is rgb
    weights = next(kw for _, kw, _ in in_memory if kw["name"] == "weights [ir]")
    assert weights["axis_labels"][0] == "level" and weights["scale"] == (1.0, 0.5, 2.0)
    assert weights["metadata"][MARKER]["levels"] == [*FAST["layers"], "max"]
    assert in_memory[0][1]["units"] == ("millimeter", "millimeter")
    for (data, kw, _), (lazy_data, lazy_kw, _) in zip(in_memory, lazy, strict=True):
        name = kw["name"]
        assert (lazy_data.shape, lazy_data.dtype) == (data.shape, data.dtype), name
        # the lazy layers are added hidden; their detail limits are fixed
        assert lazy_kw.pop("visible") is False and lazy_kw.pop("multiscale") is False, name
        if name.startswith("detail"):
            assert lazy_kw.pop("contrast_limits") == DETAIL_LIMITS
            limit = float(np.max(np.abs(result.detail)))
            assert kw.pop("contrast_limits") == (-limit, limit)
        meta, lazy_meta = kw.pop("metadata"), lazy_kw.pop("metadata")
        assert _same(kw, lazy_kw), name  # colormap, limits, transform, features, ...
        assert meta["params"] is result.params and lazy_meta["params"] == lazy_run.params
        assert meta["timings"] is result.timings and lazy_meta["timings"] == {}
        marker, lazy_marker = meta[MARKER], lazy_meta[MARKER]
        assert lazy_marker.pop("lazy") is True and lazy_marker.pop("lazy_fusion") is lazy_run
        assert _same(marker, lazy_marker), name


def test_compared_method_layer_takes_the_infrared_transform():
    from napari.layers import Image

    ir_layer = Image(np.zeros((8, 8), np.uint8), name="ir", scale=(0.5, 2.0), rotate=30)
    _, kwargs, layer_type = method_layer_data(
        np.zeros((8, 8), np.uint16), "gff", ir_layer, ("ir", "vis"), {"qabf": 0.5}
    )
    assert layer_type == "image" and kwargs["name"] == "gff [ir + vis]"
    assert kwargs["contrast_limits"] == (0.0, 65535.0)
    assert kwargs["metadata"]["metrics"] == {"qabf": 0.5}
    assert kwargs["metadata"]["napari_resfuse"]["method"] == "gff"
    np.testing.assert_allclose(kwargs["scale"], (0.5, 2.0))
    np.testing.assert_allclose(kwargs["rotate"], ir_layer.rotate)
