"""``fuse_layers``: the scripted path from two layers to named, aligned output layers."""

from __future__ import annotations

import numpy as np
import pytest

from napari_resfuse import LEVELS, fuse, fuse_layers
from napari_resfuse._napari._alignment import data_to_world, registration_from_layers
from napari_resfuse._napari.layers import OUTPUTS, output_names
from tests.conftest import textured_pair

ALL = OUTPUTS
NAMES = [
    "fused [ir + vis]",
    "base [ir]",
    "base [vis]",
    "detail [ir]",
    "detail [vis]",
    "weights [ir]",
    "weights [vis]",
    "winning level [ir]",
    "winning level [vis]",
]


def test_output_names_follow_input_names():
    names = output_names("LWIR 7", "camera")
    assert names["fused"] == ("fused [LWIR 7 + camera]",)
    assert names["winning level"] == ("winning level [LWIR 7]", "winning level [camera]")


def test_fuse_layers_from_a_script(viewer):
    # Issue 12's layer-transform rule: the infrared layer's transform differs from the visible
    # one's, so it is resampled onto the visible grid and the outputs take the visible
    # layer's transform (before that rule this pair was fused pixel for pixel).
    ir, vis = textured_pair()
    ir_layer = viewer.add_image(
        ir, name="ir", scale=(0.5, 0.25), translate=(10, -4), rotate=15, units=("mm", "mm")
    )
    vis_layer = viewer.add_image(vis, name="vis", units=("mm", "mm"))
    ir_before, vis_before = ir.copy(), vis.copy()

    layers = fuse_layers(viewer, ir_layer, "vis", weights="random", seed=3, outputs=ALL)

    assert [layer.name for layer in layers] == NAMES
    assert [layer.name for layer in viewer.layers] == ["ir", "vis", *NAMES]
    registration = registration_from_layers(ir_layer, vis_layer)
    expected = fuse(ir, vis, weights="random", seed=3, registration=registration, crop=None)
    np.testing.assert_array_equal(layers[0].data, expected.fused)
    np.testing.assert_array_equal(layers[3].data, expected.detail[0])
    for layer in layers:
        assert layer.data.shape[-2:] == vis.shape
        np.testing.assert_allclose(layer.scale[-2:], (1, 1))
        np.testing.assert_allclose(layer.translate[-2:], (0, 0))
        np.testing.assert_allclose(layer.rotate[-2:, -2:], np.eye(2))
        np.testing.assert_allclose(data_to_world(layer)[-3:, -3:], data_to_world(vis_layer))
        assert [str(u) for u in layer.units[-2:]] == ["millimeter", "millimeter"]
        params = layer.metadata["params"]
        assert params["weights_id"] == "random:seed=3"
        assert params["pretrained"] is False
        assert params["kernel_size"] == 31
        assert params["registration"]["crop"] is None
    # inputs untouched, in the arrays and in the layers
    np.testing.assert_array_equal(ir, ir_before)
    np.testing.assert_array_equal(viewer.layers["vis"].data, vis_before)
    np.testing.assert_allclose(ir_layer.scale, (0.5, 0.25))


def test_layers_of_one_shape_and_transform_fuse_pixel_for_pixel(viewer):
    ir, vis = textured_pair()
    transform = {"scale": (0.5, 2.0), "translate": (3, -7), "rotate": 20, "shear": [0.1]}
    a = viewer.add_image(ir, name="ir", **transform)
    viewer.add_image(vis, name="vis", **transform)
    layers = fuse_layers(viewer, "ir", "vis", weights="random", outputs=ALL)
    expected = fuse(ir, vis, weights="random")
    for layer, data in zip(
        layers[:5], [expected.fused, *expected.base, *expected.detail], strict=True
    ):
        np.testing.assert_array_equal(layer.data, data)  # bit-identical to fuse(ir, vis)
    assert "registration" not in layers[0].metadata["params"]
    np.testing.assert_allclose(data_to_world(layers[0]), data_to_world(a))


def test_layer_transforms_give_the_explicit_registration_path(viewer):
    """Issue 12: fusing two layers whose transforms overlay them equals ``fuse`` with the
    registration those transforms describe, on the visible grid."""
    ir, vis = textured_pair(shape=(96, 128))
    coarse = ir[8:88:2, 4:124:2].astype(np.float32) / 255  # a coarser, cropped infrared
    vis_layer = viewer.add_image(vis, name="vis", scale=(0.1, 0.1), translate=(5.0, 2.0))
    ir_layer = viewer.add_image(
        coarse,
        name="ir",
        contrast_limits=(0.0, 1.0),
        scale=(0.2, 0.2),
        translate=(5.8, 2.4),
        rotate=3,
    )
    fused, weights, _ = fuse_layers(viewer, ir_layer, vis_layer, weights="random")
    registration = registration_from_layers(ir_layer, vis_layer)
    assert registration.infrared_shape == coarse.shape and 0 < registration.overlap < 1
    expected = fuse(
        coarse,
        vis,
        weights="random",
        registration=registration,
        crop=None,
        value_range=((0.0, 1.0), (0.0, 255.0)),
    )
    np.testing.assert_array_equal(fused.data, expected.fused)
    np.testing.assert_array_equal(weights.data[-1], expected.weights[0])
    assert fused.data.shape == vis.shape
    np.testing.assert_allclose(data_to_world(fused), data_to_world(vis_layer))
    np.testing.assert_allclose(data_to_world(weights)[1:, 1:], data_to_world(vis_layer))


def test_layers_that_do_not_overlap_are_refused_naming_both(viewer):
    ir, vis = textured_pair()
    viewer.add_image(ir, name="thermal", translate=(500, 0))
    viewer.add_image(vis, name="camera")
    with pytest.raises(ValueError, match=r"'thermal'.*'camera'.*do not overlap"):
        fuse_layers(viewer, "thermal", "camera", weights="random")
    assert len(viewer.layers) == 2
    np.testing.assert_allclose(viewer.layers["thermal"].translate, (500, 0))


def test_stacks_whose_planes_lie_apart_are_refused(viewer):
    ir, vis = textured_pair()
    viewer.add_image(np.stack([ir, ir]), name="ir", scale=(5, 1, 1))
    viewer.add_image(np.stack([vis, vis]), name="vis", scale=(1, 1, 1))
    with pytest.raises(ValueError, match=r"'ir'.*'vis'.*place the planes.*differently"):
        fuse_layers(viewer, "ir", "vis", weights="random")


def test_layer_kinds_and_display(viewer, small_layers):
    layers = {
        lay.name: lay for lay in fuse_layers(viewer, "ir", "vis", weights="random", outputs=ALL)
    }
    result = fuse(*(lay.data for lay in small_layers), weights="random")
    fused = layers["fused [ir + vis]"]
    assert fused.colormap.name == "gray" and tuple(fused.contrast_limits) == (0, 1)

    detail = layers["detail [vis]"]
    lo, hi = detail.contrast_limits
    assert lo == -hi and hi == pytest.approx(np.abs(result.detail).max())
    assert detail.colormap.name == "PiYG"

    weights = layers["weights [ir]"]
    assert weights.data.shape == (len(LEVELS) + 1, 64, 96)
    assert weights.axis_labels[0] == "level"
    assert tuple(weights.contrast_limits) == (0, 1)
    assert weights.metadata["napari_resfuse"]["levels"] == [*LEVELS, "max"]
    np.testing.assert_array_equal(weights.data[:-1], result.level_weights[0])
    np.testing.assert_array_equal(weights.data[-1], result.weights[0])

    winning = layers["winning level [vis]"]
    assert type(winning).__name__ == "Labels"
    np.testing.assert_array_equal(winning.data, result.winning_level[1] + 1)
    assert set(np.unique(winning.data)) <= set(range(1, len(LEVELS) + 1))
    assert list(winning.features["level"]) == list(LEVELS)


def test_default_outputs_are_fused_and_weights(viewer, small_layers):
    layers = fuse_layers(viewer, "ir", "vis", weights="random")
    assert [lay.name for lay in layers] == ["fused [ir + vis]", "weights [ir]", "weights [vis]"]


def test_rerun_updates_layers_in_place(viewer, small_layers):
    first = fuse_layers(viewer, "ir", "vis", weights="random", outputs=ALL)
    first[1].name = "my base"  # a renamed output is still the same output
    old_fused = first[0].data.copy()

    second = fuse_layers(viewer, "ir", "vis", weights="random", kernel_size=7, outputs=ALL)

    assert len(viewer.layers) == 2 + len(NAMES)
    assert all(a is b for a, b in zip(first, second, strict=True))
    assert second[1].name == "my base"
    assert second[0].metadata["params"]["kernel_size"] == 7
    assert not np.array_equal(second[0].data, old_fused)
    expected = fuse(*(lay.data for lay in small_layers), weights="random", kernel_size=7)
    np.testing.assert_array_equal(second[0].data, expected.fused)


def test_fewer_levels_replace_the_level_stack(viewer, small_layers):
    fuse_layers(viewer, "ir", "vis", weights="random")
    layers = fuse_layers(viewer, "ir", "vis", weights="random", layers=("conv1", "conv5_1"))
    assert viewer.layers["weights [ir]"].data.shape == (3, 64, 96)
    assert layers[1].metadata["napari_resfuse"]["levels"] == ["conv1", "conv5_1", "max"]


def test_rgb_visible_gives_rgb_fused_layer(viewer):
    ir, vis = textured_pair()
    rgb = np.stack([vis, vis[::-1], np.roll(vis, 5, axis=1)], axis=-1)
    viewer.add_image(ir, name="ir")
    viewer.add_image(rgb, name="colour", rgb=True)
    fused, *_ = fuse_layers(viewer, "ir", "colour", weights="random", outputs=("fused", "base"))
    assert fused.rgb and fused.data.shape == (64, 96, 3)
    assert viewer.layers["base [colour]"].data.shape == (64, 96)
    np.testing.assert_array_equal(fused.data, fuse(ir, rgb, weights="random").fused)


def test_stack_fuses_plane_by_plane_and_stays_aligned(viewer):
    pairs = [textured_pair(seed=s) for s in range(3)]
    ir = np.stack([p[0] for p in pairs])
    vis = np.stack([p[1] for p in pairs])
    viewer.add_image(ir, name="ir", scale=(5, 1, 1))
    viewer.add_image(vis, name="vis", scale=(5, 1, 1))
    layers = fuse_layers(viewer, "ir", "vis", weights="random", outputs=("fused", "weights"))
    assert layers[0].data.shape == (3, 64, 96)
    assert layers[1].data.shape == (len(LEVELS) + 1, 3, 64, 96)
    np.testing.assert_allclose(layers[1].scale, (1, 5, 1, 1))
    plane = fuse(ir[1], vis[1], weights="random")
    np.testing.assert_allclose(layers[0].data[1], plane.fused, atol=1e-6)


def test_non_uint8_layers_are_scaled_by_their_contrast_limits(viewer):
    ir, vis = textured_pair()
    ir16 = ir.astype(np.uint16) * 200
    viewer.add_image(ir16, name="ir", contrast_limits=(1000, 40000))
    viewer.add_image(vis, name="vis")
    fused, *_ = fuse_layers(viewer, "ir", "vis", weights="random", outputs=("fused",))
    assert fused.metadata["params"]["value_range"] == [[1000.0, 40000.0], [0.0, 255.0]]
    expected = fuse(ir16, vis, weights="random", value_range=((1000, 40000), (0, 255)))
    np.testing.assert_array_equal(fused.data, expected.fused)


def test_shape_mismatch_names_both_layers(viewer):
    ir, vis = textured_pair()
    viewer.add_image(ir, name="thermal")
    viewer.add_image(vis[:, :80], name="camera")
    with pytest.raises(ValueError, match=r"'thermal'.*'camera'.*differ in shape"):
        fuse_layers(viewer, "thermal", "camera", weights="random")
    assert len(viewer.layers) == 2


def test_bad_layer_arguments_are_clear(viewer, small_layers):
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        fuse_layers(viewer, "nope", "vis", weights="random")
    labels = viewer.add_labels(np.zeros((64, 96), np.uint8), name="mask")
    with pytest.raises(ValueError, match=r"must be an Image layer.*Labels 'mask'"):
        fuse_layers(viewer, "ir", labels, weights="random")
    with pytest.raises(ValueError, match="outputs must be a subset"):
        fuse_layers(viewer, "ir", "vis", weights="random", outputs=("fused", "everything"))
    assert len(viewer.layers) == 3
