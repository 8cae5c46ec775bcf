"""fuse(..., registration=...): warping onto one grid, cropping, filling, files, refusals.

Seeded random weights and three feature levels keep each run short; what is tested is the
geometry around the engine, which is the same for any weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_resfuse import fuse
from napari_resfuse.register import Registration, RegistrationError
from tests.conftest import textured_pair

FAST = {"weights": "random", "device": "cpu", "layers": ("conv1", "conv2_1", "conv3_1")}


def shift(dr, dc, ir_shape, vis_shape):
    """Visible pixel (r, c) sees infrared pixel (r + dr, c + dc)."""
    return Registration(
        [[1, 0, dr], [0, 1, dc], [0, 0, 1]],
        model="translation",
        infrared_shape=ir_shape,
        visible_shape=vis_shape,
    )


@pytest.fixture(scope="module")
def pair():
    return textured_pair(shape=(64, 96), seed=3)


def test_identity_registration_gives_exactly_the_plain_fusion(pair):
    ir, vis = pair
    plain = fuse(ir, vis, **FAST)
    registered = fuse(ir, vis, registration=shift(0, 0, ir.shape, vis.shape), **FAST)
    np.testing.assert_array_equal(registered.fused, plain.fused)
    np.testing.assert_array_equal(registered.weights, plain.weights)
    assert registered.params["registration"]["crop_offset"] == [0, 0]
    assert registered.valid is None and plain.valid is None
    assert "registration" not in plain.params


def test_crop_to_the_overlap_equals_fusing_the_matching_crops(pair):
    ir, vis = pair
    big_ir = np.pad(ir, ((10, 0), (0, 20)), mode="reflect")  # (74, 116): IR sees more
    # Visible pixel (r, c) sees infrared pixel (r + 10, c + 30): the right 10 visible
    # columns fall outside the infrared frame.
    reg = shift(10, 30, big_ir.shape, vis.shape)
    result = fuse(big_ir, vis, registration=reg, **FAST)
    info = result.params["registration"]
    assert info["crop_offset"] == [0, 0] and info["crop_shape"] == [64, 86]
    assert info["grid"] == "visible" and info["model"] == "translation"
    expected = fuse(big_ir[10:74, 30:116], vis[:, :86], **FAST)
    np.testing.assert_array_equal(result.fused, expected.fused)


def test_crop_offset_is_recorded(pair):
    ir, vis = pair
    reg = shift(-6, -9, ir.shape, vis.shape)  # visible (6.., 9..) sees infrared (0.., 0..)
    result = fuse(ir, vis, registration=reg, **FAST)
    info = result.params["registration"]
    assert info["crop_offset"] == [6, 9] and info["crop_shape"] == [58, 87]
    assert result.fused.shape == (58, 87)
    expected = fuse(ir[:58, :87], vis[6:, 9:], **FAST)
    np.testing.assert_array_equal(result.fused, expected.fused)


def test_no_crop_keeps_the_frame_fills_with_the_visible_and_marks_the_overlap(pair):
    ir, vis = pair
    reg = shift(0, 40, ir.shape, vis.shape)  # visible columns 56.. see nothing
    result = fuse(ir, vis, registration=reg, crop=None, **FAST)
    assert result.fused.shape == vis.shape
    np.testing.assert_array_equal(result.valid, reg.valid)
    assert result.valid[:, :56].all() and not result.valid[:, 56:].any()
    assert np.isfinite(result.fused).all()
    # Outside the overlap the infrared input is the visible one: the same base and detail
    # (away from the box filter's reach across the border).
    far = slice(56 + 40, None)
    np.testing.assert_allclose(result.base[0][:, far], result.base[1][:, far], atol=1e-6)
    np.testing.assert_allclose(result.detail[0][:, far], result.detail[1][:, far], atol=1e-6)
    assert result.params["registration"]["crop"] is None


def test_fuse_on_the_infrared_grid(pair):
    ir, vis = pair
    small_ir = ir[::2, ::2]  # (32, 48): every other pixel
    reg = Registration(
        [[0.5, 0, 0], [0, 0.5, 0], [0, 0, 1]],
        model="similarity",
        infrared_shape=small_ir.shape,
        visible_shape=vis.shape,
    )
    on_ir = fuse(small_ir, vis, registration=reg, grid="infrared", **FAST)
    assert on_ir.fused.shape == (32, 48)
    assert on_ir.params["registration"]["grid"] == "infrared"
    expected = fuse(small_ir, vis[::2, ::2], **FAST)  # visible sampled at the IR pixels
    np.testing.assert_allclose(on_ir.fused, expected.fused, atol=1e-6)
    on_vis = fuse(small_ir, vis, registration=reg, **FAST)
    assert on_vis.fused.shape[0] > 60 and on_vis.fused.shape[1] > 90


def test_registration_file_and_wrong_shapes(pair, tmp_path):
    ir, vis = pair
    path = shift(2, 3, ir.shape, vis.shape).save(tmp_path / "rig.json")
    from_file = fuse(ir, vis, registration=path, **FAST)
    from_object = fuse(ir, vis, registration=shift(2, 3, ir.shape, vis.shape), **FAST)
    np.testing.assert_array_equal(from_file.fused, from_object.fused)
    with pytest.raises(RegistrationError, match=r"infrared image of 64 x 96 px.*not infrared 32"):
        fuse(ir[:32], vis, registration=str(path), **FAST)


def test_stacks_use_one_registration_for_every_plane(pair):
    ir, vis = pair
    reg = shift(4, 4, ir.shape, vis.shape)
    stack = fuse(np.stack([ir, ir]), np.stack([vis, vis[::-1]]), registration=reg, **FAST)
    first = fuse(ir, vis, registration=reg, **FAST)
    assert stack.fused.shape == (2, *first.fused.shape)
    np.testing.assert_array_equal(stack.fused[0], first.fused)


def test_rgb_visible_with_a_registration(pair):
    ir, vis = pair
    rgb = np.stack([vis, vis // 2, 255 - vis], axis=-1)
    result = fuse(ir, rgb, registration=shift(3, 3, ir.shape, vis.shape), crop=None, **FAST)
    assert result.fused.shape == (64, 96, 3)
    assert np.isfinite(result.fused).all()


def test_float_inputs_keep_their_unwarped_value_range(pair):
    ir, vis = pair
    ir_float = ir.astype(np.float32) * 0.1 + 20.0  # e.g. degrees Celsius
    result = fuse(ir_float, vis, registration=shift(5, 5, ir.shape, vis.shape), **FAST)
    low, high = result.params["value_range"][0]
    assert (low, high) == (float(ir_float.min()), float(ir_float.max()))


def test_bad_arguments_and_inputs_untouched(pair):
    ir, vis = pair
    ir_copy, vis_copy = ir.copy(), vis.copy()
    reg = shift(0, 0, ir.shape, vis.shape)
    with pytest.raises(ValueError, match="grid must be 'visible' or 'infrared'"):
        fuse(ir, vis, registration=reg, grid="thermal", **FAST)
    with pytest.raises(ValueError, match="crop must be 'overlap' or None"):
        fuse(ir, vis, registration=reg, crop="all", **FAST)
    with pytest.raises(ValueError, match="registration must be None, 'auto'"):
        fuse(ir, vis, registration=np.eye(3), **FAST)
    with pytest.raises(RegistrationError, match="do not overlap at all"):
        fuse(ir, vis, registration=shift(0, 500, ir.shape, vis.shape), **FAST)
    nan_ir = ir.astype(np.float32)
    nan_ir[3, 3] = np.nan
    with pytest.raises(ValueError, match="infrared image contains NaN"):
        fuse(nan_ir, vis, registration=reg, **FAST)
    fuse(ir, vis, registration=shift(1.5, 2.5, ir.shape, vis.shape), crop=None, **FAST)
    np.testing.assert_array_equal(ir, ir_copy)
    np.testing.assert_array_equal(vis, vis_copy)


def test_a_cubic_stack_is_not_taken_for_colour():
    from napari_resfuse.register._apply import align_pair

    cube = np.random.default_rng(0).uniform(size=(40, 40, 40)).astype(np.float32)
    aligned = align_pair(cube, cube, shift(2, 3, (40, 40), (40, 40)))
    assert aligned.infrared.shape == aligned.visible.shape == (40, 38, 37)
    np.testing.assert_array_equal(aligned.visible, cube[:, :38, :37])
    np.testing.assert_array_equal(aligned.infrared, cube[:, 2:, 3:])
