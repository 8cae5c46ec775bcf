"""The "Align infrared to visible" widget in a real viewer: landmarks, files, the overlay."""

from __future__ import annotations

import numpy as np
import pytest

from napari_resfuse._napari._align_widget import (
    AlignWidget,
    data_to_world,
    registration_from_layers,
)
from napari_resfuse.register import Registration, register_landmarks
from napari_resfuse.sample import load_unaligned_sample

from .conftest import PLUGIN

ALIGN = "Align infrared to visible"


@pytest.fixture
def unaligned(viewer):
    viewer.open_sample(PLUGIN, "street_unaligned")
    return viewer.layers["infrared (unaligned)"], viewer.layers["visible"]


@pytest.fixture
def align(viewer, unaligned):
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, ALIGN)
    return widget


def _truth_points(n=6, seed=0):
    """Corresponding (infrared, visible) points of the unaligned sample, from its truth."""
    _, _, truth = load_unaligned_sample()
    vis = np.random.default_rng(seed).uniform((40, 60), (200, 260), size=(n, 2))
    return truth.to_infrared(vis), vis, truth


def test_sample_opens_unaligned_with_its_truth(unaligned):
    ir, vis = unaligned
    assert ir.data.shape == (128, 160) and vis.data.shape == (240, 320)
    truth = Registration.from_dict(ir.metadata["true_registration"])
    assert truth.infrared_shape == (128, 160) and truth.rotation == pytest.approx(5.0)
    assert truth.scale == pytest.approx(1 / 1.6)


def test_widget_is_docked_and_guesses_the_layers(align, unaligned):
    assert isinstance(align, AlignWidget)
    ir, vis = unaligned
    assert align.infrared_layer.value is ir and align.visible_layer.value is vis


def test_landmarks_update_residuals_and_apply_to_the_overlay(viewer, align, unaligned):
    ir, vis = unaligned
    align.mode.value = "Landmarks"
    lm_ir, lm_vis = align.add_landmark_layers()
    assert (lm_ir.name, lm_vis.name) == (
        "landmarks [infrared (unaligned)]",
        "landmarks [visible]",
    )
    ir_pts, vis_pts, truth = _truth_points()
    lm_ir.data = ir_pts[:2]
    lm_vis.data = vis_pts[:2]
    assert align.rms is None and "needs 3 pairs" in align.residual_text.value
    lm_ir.data = ir_pts
    lm_vis.data = vis_pts
    assert align.rms == pytest.approx(0.0, abs=1e-6)
    assert "RMS 0.00 px over 6 pairs" in align.residual_text.value
    moved = vis_pts.copy()
    moved[2] += (3.0, 4.0)  # one point off by 5 px: residuals show it
    lm_vis.data = moved
    assert align.residuals.argmax() == 2 and align.rms > 1.0
    lm_vis.data = vis_pts

    reg = align.apply_landmarks()
    np.testing.assert_allclose(reg.matrix, truth.matrix, atol=1e-6)
    # The overlay: infrared pixel p lands where the visible layer shows inv(matrix) p.
    for p in ([0.0, 0.0], [127.0, 159.0], [64.0, 10.0]):
        seen_at = truth.to_visible([p])[0]
        np.testing.assert_allclose(ir.data_to_world(p), vis.data_to_world(seen_at), atol=1e-6)
    assert ir.metadata["registration"]["model"] == "affine"
    assert ir.colormap.name == "magma" and ir.blending == "additive"
    assert viewer.layers.index(ir) > viewer.layers.index(vis)
    # The infrared landmarks follow their image onto the visible ones.
    np.testing.assert_allclose(
        [lm_ir.data_to_world(p) for p in ir_pts],
        [lm_vis.data_to_world(p) for p in vis_pts],
        atol=1e-6,
    )
    # And the layers' transforms now describe the same registration.
    np.testing.assert_allclose(registration_from_layers(ir, vis).matrix, truth.matrix, atol=1e-6)


def test_alignment_composes_with_the_visible_layers_transform(viewer, align, unaligned):
    ir, vis = unaligned
    vis.scale = (0.5, 0.5)
    vis.translate = (100.0, -30.0)
    vis.rotate = 15
    ir.scale = (2.0, 2.0)  # the infrared layer's own transform is compensated for
    ir_pts, vis_pts, truth = _truth_points()
    align.apply(
        register_landmarks(ir_pts, vis_pts, infrared_shape=(128, 160), visible_shape=(240, 320))
    )
    for p in ([0.0, 0.0], [127.0, 159.0], [30.0, 100.0]):
        np.testing.assert_allclose(
            ir.data_to_world(p), vis.data_to_world(truth.to_visible([p])[0]), atol=1e-6
        )
    assert vis.scale.tolist() == [0.5, 0.5]  # the visible layer is untouched


def test_save_and_load_use_the_cli_format(viewer, align, unaligned, tmp_path):
    ir, vis = unaligned
    ir_pts, vis_pts, truth = _truth_points()
    align.apply(
        register_landmarks(ir_pts, vis_pts, infrared_shape=(128, 160), visible_shape=(240, 320))
    )
    path = align.save(tmp_path / "rig.json")
    saved = Registration.load(path)
    np.testing.assert_allclose(saved.matrix, truth.matrix, atol=1e-6)
    ir.affine = np.eye(3)  # undo the overlay
    loaded = align.load(path)
    assert loaded is not None
    np.testing.assert_allclose(registration_from_layers(ir, vis).matrix, truth.matrix, atol=1e-6)


def test_load_refuses_a_file_for_other_shapes(viewer, align, unaligned, tmp_path, notifications):
    ir, _ = unaligned
    other = Registration(np.eye(3), infrared_shape=(10, 20), visible_shape=(240, 320))
    before = data_to_world(ir).copy()
    assert align.load(other.save(tmp_path / "other.json")) is None
    assert any("10 x 20 px" in str(n.message) for n in notifications)
    np.testing.assert_array_equal(data_to_world(ir), before)


def test_projective_is_shown_by_its_nearest_affine(viewer, align, unaligned, notifications):
    ir, vis = unaligned
    m = np.array([[0.6, 0.05, 3.0], [-0.04, 0.62, 2.0], [2e-5, 1e-5, 1.0]])
    reg = Registration(m, model="projective", infrared_shape=(128, 160), visible_shape=(240, 320))
    align.apply(reg)
    assert ir.metadata["registration"]["model"] == "projective"
    assert any("nearest affine" in str(n.message) for n in notifications)
    centre = np.array([120.0, 160.0])
    np.testing.assert_allclose(
        ir.data_to_world(reg.to_infrared([centre])[0]), vis.data_to_world(centre), atol=0.5
    )


FAST = {"weights": "random", "device": "cpu", "layers": ("conv1", "conv2_1", "conv3_1")}


def test_fusing_aligned_layers_equals_fusing_with_the_registration(viewer, align, unaligned):
    from napari_resfuse import fuse, fuse_layers

    ir, vis = unaligned
    ir_pts, vis_pts, _ = _truth_points()
    reg = register_landmarks(ir_pts, vis_pts, infrared_shape=(128, 160), visible_shape=(240, 320))
    align.apply(reg)
    fused_layer = fuse_layers(viewer, ir, vis, **FAST)[0]
    expected = fuse(ir.data, vis.data, registration=reg, crop=None, **FAST)
    assert fused_layer.data.shape == (240, 320)
    np.testing.assert_array_equal(fused_layer.data, expected.fused)
    # The output sits on the visible layer's grid.
    np.testing.assert_allclose(data_to_world(fused_layer), data_to_world(vis))


def test_layers_with_equal_transforms_fuse_as_before(viewer):
    from napari_resfuse import fuse, fuse_layers
    from tests.conftest import textured_pair

    ir, vis = textured_pair()
    a = viewer.add_image(ir, name="ir", scale=(2, 2))
    b = viewer.add_image(vis, name="vis", scale=(2, 2))
    fused_layer = fuse_layers(viewer, a, b, **FAST)[0]
    np.testing.assert_array_equal(fused_layer.data, fuse(ir, vis, **FAST).fused)
    c = viewer.add_image(ir[:40], name="short ir", scale=(2, 2))
    with pytest.raises(ValueError, match=r"differ in shape.*align them first"):
        fuse_layers(viewer, c, b, **FAST)


def test_same_shape_layers_with_a_registration_are_resampled(viewer, align):
    from napari_resfuse import fuse, fuse_layers
    from tests.conftest import textured_pair

    ir, vis = textured_pair()
    a = viewer.add_image(ir, name="ir")
    b = viewer.add_image(vis, name="vis")
    reg = Registration(
        [[1, 0, 3.5], [0, 1, -2.0], [0, 0, 1]],
        model="translation",
        infrared_shape=ir.shape,
        visible_shape=vis.shape,
    )
    align.infrared_layer.value, align.visible_layer.value = a, b
    align.apply(reg)
    fused_layer = fuse_layers(viewer, a, b, **FAST)[0]
    expected = fuse(ir, vis, registration=reg, crop=None, **FAST)
    np.testing.assert_array_equal(fused_layer.data, expected.fused)


# --- the automatic path ------------------------------------------------------------------------


def _corner_error(reg, truth):
    """Largest distance (visible px) between where the two registrations put the infrared
    frame's corners."""
    h, w = truth.infrared_shape
    corners = np.array([[0.0, 0.0], [0.0, w - 1.0], [h - 1.0, 0.0], [h - 1.0, w - 1.0]])
    return float(np.abs(reg.to_visible(corners) - truth.to_visible(corners)).max())


@pytest.fixture
def inverted_crop(viewer):
    """A visible layer and an infrared layer of inverted contrast that sees a crop of it:
    visible pixel (r, c) shows infrared pixel (r - 20, c - 30)."""
    from scipy import ndimage

    noise = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((200, 240)), 3)
    vis = ((noise - noise.min()) / np.ptp(noise) * 255).astype(np.uint8)
    ir = (255 - vis[20:170, 30:220]).copy()
    truth = Registration(
        [[1, 0, -20.0], [0, 1, -30.0], [0, 0, 1]],
        model="translation",
        infrared_shape=ir.shape,
        visible_shape=vis.shape,
    )
    vis_layer = viewer.add_image(vis, name="visible")
    ir_layer = viewer.add_image(ir, name="infrared")
    return ir_layer, vis_layer, truth


def test_automatic_alignment_runs_in_a_worker_and_applies(qtbot, viewer, inverted_crop):
    ir, vis, truth = inverted_crop
    align = AlignWidget(viewer)
    assert align.infrared_layer.value is ir and align.visible_layer.value is vis
    shown = []
    align.progress.changed.connect(shown.append)
    align.model.value = "similarity"
    with qtbot.waitSignal(align.run_finished, timeout=120_000):
        worker = align.run()
        assert worker is not None and align.is_running
        assert align.align_button.text == "Cancel"
    assert not align.is_running and align.align_button.text == "Align"
    reg = align.registration
    assert reg is not None and reg.method == "auto"
    assert _corner_error(reg, truth) <= 1.0
    assert ir.metadata["registration"]["method"] == "auto"
    np.testing.assert_allclose(registration_from_layers(ir, vis).matrix, reg.matrix, atol=1e-6)
    assert shown  # the estimator's progress reached the bar
    assert "aligned (similarity, auto)" in align.status.value


def test_cancelled_alignment_leaves_the_layers_alone(qtbot, viewer, align, unaligned):
    ir, _ = unaligned
    before = data_to_world(ir).copy()
    with qtbot.waitSignal(align.run_finished, timeout=120_000):
        align.run()
        align.cancel()
        assert align.align_button.text == "Cancelling…"
    np.testing.assert_array_equal(data_to_world(ir), before)
    assert "registration" not in ir.metadata
    assert align.registration is None
    assert align.status.value == "cancelled: the layers are unchanged"


def test_a_second_run_is_refused_while_one_runs(qtbot, viewer, align, unaligned, notifications):
    with qtbot.waitSignal(align.run_finished, timeout=120_000):
        assert align.run() is not None
        assert align.run() is None
        align.cancel()
    assert any("already running" in str(n.message) for n in notifications)


def test_the_fusion_widget_fuses_the_aligned_pair_with_no_extra_step(
    qtbot, viewer, align, unaligned
):
    from napari_resfuse import fuse

    from .conftest import WIDGET, wait_for_run

    ir, vis = unaligned
    ir_pts, vis_pts, _ = _truth_points()
    reg = register_landmarks(ir_pts, vis_pts, infrared_shape=(128, 160), visible_shape=(240, 320))
    align.apply(reg)
    _dock, fusion = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    fusion.infrared_layer.value, fusion.visible_layer.value = ir, vis
    fusion.set_options(**FAST)
    assert fusion.run() is not None
    wait_for_run(qtbot, fusion)
    fused = fusion.last_layers[0]
    expected = fuse(ir.data, vis.data, registration=reg, crop=None, **FAST)
    np.testing.assert_array_equal(fused.data, expected.fused)
    np.testing.assert_allclose(data_to_world(fused), data_to_world(vis))


def test_adding_a_landmark_hands_over_to_the_other_layer(viewer, align, unaligned):
    align.mode.value = "Landmarks"
    lm_ir, lm_vis = align.add_landmark_layers()
    assert viewer.layers.selection.active is lm_ir and lm_ir.mode == "add"
    lm_ir.add([10.0, 20.0])
    assert viewer.layers.selection.active is lm_vis and lm_vis.mode == "add"
    lm_vis.add([30.0, 40.0])
    assert viewer.layers.selection.active is lm_ir
    assert list(lm_ir.features["index"]) == [1] and list(lm_vis.features["index"]) == [1]
