"""The plugin as napari sees it: manifest, sample data, screenshots and the demo."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from napari_resfuse import fuse_layers, load_sample
from napari_resfuse._napari import demo
from napari_resfuse._napari._widget import FusionWidget
from napari_resfuse._napari.demo import SCREENSHOT, show_or_screenshot

from .conftest import PLUGIN, RUN_TIMEOUT_MS, WIDGET

ROOT = Path(__file__).resolve().parents[2]


def test_npe2_validate_passes_and_imports_every_contribution():
    npe2 = Path(sys.executable).with_name("npe2")
    command = [str(npe2)] if npe2.exists() else [sys.executable, "-m", "npe2"]
    done = subprocess.run(
        [*command, "validate", "--imports", PLUGIN], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout


def test_manifest_is_found_through_the_package_symlink():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution(PLUGIN)
    assert manifest.name == PLUGIN
    assert [w.display_name for w in manifest.contributions.widgets][:2] == [
        "Fuse infrared + visible",
        "Fusion metrics",
    ]
    link = ROOT / "src" / "napari_resfuse" / "napari.yaml"
    assert link.is_symlink() and link.resolve() == (ROOT / "napari.yaml").resolve()


def test_sample_data_opens_as_infrared_and_visible(viewer):
    viewer.open_sample(PLUGIN, "street")
    ir, vis = load_sample()
    assert sorted(layer.name for layer in viewer.layers) == ["infrared", "visible"]
    np.testing.assert_array_equal(viewer.layers["infrared"].data, ir)
    np.testing.assert_array_equal(viewer.layers["visible"].data, vis)
    assert viewer.layers["infrared"].colormap.name == "inferno"
    assert viewer.layers["visible"].colormap.name == "gray"


def _not_blank(path: Path) -> np.ndarray:
    image = iio.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    grey = image[..., :3].astype(float).mean(axis=-1)
    assert grey.std() > 10, "the screenshot is (nearly) uniform"
    assert len(np.unique(grey)) > 50
    return image


def test_screenshot_of_the_fused_layer_is_not_blank(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample(PLUGIN, "street")
    (fused,) = fuse_layers(viewer, "infrared", "visible", weights="random", outputs=("fused",))
    for layer in viewer.layers:
        layer.visible = layer is fused
    path = tmp_path / "fused.png"
    viewer.screenshot(str(path), canvas_only=True, flash=False)
    image = _not_blank(path)
    # the canvas shows the fused image: its brightest and darkest regions are far apart
    grey = image[..., :3].mean(axis=-1)
    assert np.percentile(grey, 99) - np.percentile(grey, 1) > 100


def test_headless_demo_writes_a_screenshot_with_the_widget(tmp_path, capsys):
    path = show_or_screenshot(tmp_path, "random", display=False)
    assert "no display" in capsys.readouterr().out
    assert path == tmp_path / SCREENSHOT
    image = _not_blank(path)
    assert image.shape[1] >= 1000  # the whole window: canvas and docked widget


def test_headless_demo_without_xvfb_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo.shutil, "which", lambda name: None)
    assert show_or_screenshot(tmp_path, "random", display=False) is None
    assert "Xvfb is not installed" in capsys.readouterr().out


def test_interactive_demo_docks_the_widget_and_fuses(qtbot, monkeypatch):
    import napari

    seen = {}

    def fake_run():  # instead of blocking in napari's event loop: wait for the fusion
        viewer = napari.current_viewer()
        widget = viewer.window.dock_widgets[f"{WIDGET} ({PLUGIN})"]
        qtbot.waitUntil(lambda: not widget.is_running, timeout=RUN_TIMEOUT_MS)
        seen["layers"] = [layer.name for layer in viewer.layers if layer.visible]
        seen["active"] = viewer.layers.selection.active.name
        viewer.close()

    monkeypatch.setattr(napari, "run", fake_run)
    assert show_or_screenshot(Path("unused"), "random", display=True) is None
    assert seen == {
        "layers": ["fused [infrared + visible]"],
        "active": "fused [infrared + visible]",
    }


def _readme_scripted_example() -> str | None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    return next((b for b in blocks if "fuse_layers(viewer" in b and "napari.run()" in b), None)


def test_readme_scripted_example_runs(qapp, monkeypatch, tmp_path):
    code = _readme_scripted_example()
    assert code is not None, "README.md lost its scripted napari example"
    import napari

    # offline, with an empty cache: the example must still run (it falls back to random weights)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(napari, "run", lambda *a, **k: None)
    namespace: dict = {}
    try:
        exec(compile(code, "README.md", "exec"), namespace)
        viewer = namespace["viewer"]
        assert "fused [infrared + visible]" in viewer.layers
        fused = viewer.layers["fused [infrared + visible]"]
        assert fused.data.shape == (240, 320)
        assert isinstance(namespace["widget"], FusionWidget)
    finally:
        if "viewer" in namespace:
            namespace["viewer"].close()
