"""Registration: resampling, masks, overlap, the JSON file format and shape checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_resfuse.register import (
    FORMAT,
    Registration,
    RegistrationError,
    largest_rectangle,
    register,
)
from napari_resfuse.register._register import check_plausible, grey_plane


def translation(dr, dc, ir_shape=(40, 60), vis_shape=(40, 60)):
    """Visible pixel (r, c) sees infrared pixel (r + dr, c + dc)."""
    return Registration(
        [[1, 0, dr], [0, 1, dc], [0, 0, 1]],
        model="translation",
        infrared_shape=ir_shape,
        visible_shape=vis_shape,
    )


def similarity(scale, degrees, offset, ir_shape, vis_shape):
    """Visible → infrared: ``scale`` infrared px per visible px, rotated, then shifted."""
    t = np.deg2rad(degrees)
    m = np.array(
        [
            [scale * np.cos(t), -scale * np.sin(t), offset[0]],
            [scale * np.sin(t), scale * np.cos(t), offset[1]],
            [0, 0, 1],
        ]
    )
    return Registration(m, model="similarity", infrared_shape=ir_shape, visible_shape=vis_shape)


@pytest.fixture
def image():
    return np.random.default_rng(5).uniform(0, 255, (40, 60)).astype(np.float32)


# -- resampling ------------------------------------------------------------------------------


def test_integer_translation_moves_pixels_exactly(image):
    reg = translation(3, -5)
    out = reg.warp(image)
    assert out.dtype == np.float32 and out.shape == (40, 60)
    np.testing.assert_array_equal(out[0:37, 5:60], image[3:40, 0:55])
    expected_valid = np.zeros((40, 60), bool)
    expected_valid[0:37, 5:60] = True
    np.testing.assert_array_equal(reg.valid, expected_valid)
    assert (out[~reg.valid] == 0).all()  # the default fill
    assert np.isnan(reg.warp(image, fill=np.nan)[~reg.valid]).all()
    assert reg.overlap == pytest.approx(37 * 55 / (40 * 60))


def test_warp_visible_is_the_inverse(image):
    reg = translation(3, -5)
    back = reg.warp_visible(image)
    np.testing.assert_array_equal(back[3:40, 0:55], image[0:37, 5:60])
    np.testing.assert_array_equal(reg.valid_infrared, back != 0)


def test_subpixel_shift_is_bilinear(image):
    out = translation(0, 0.5).warp(image)
    np.testing.assert_allclose(out[:, :-1], (image[:, :-1] + image[:, 1:]) / 2, rtol=1e-6)


def test_projective_path_agrees_with_affine_path(image):
    reg = similarity(0.5, 6.0, (5.0, 8.0), (40, 60), (70, 100))
    as_projective = Registration(
        reg.matrix, model="projective", infrared_shape=(40, 60), visible_shape=(70, 100)
    )
    for order in (0, 1, 3):
        a = reg.warp(image, order=order)
        b = as_projective.warp(image, order=order)
        np.testing.assert_allclose(a, b, atol=1e-3)


def test_projective_warp_matches_point_mapping():
    m = np.array([[0.5, 0.05, 3.0], [-0.04, 0.55, 2.0], [1e-4, 2e-4, 1.0]])
    reg = Registration(m, model="projective", infrared_shape=(60, 80), visible_shape=(100, 140))
    rr, cc = np.mgrid[0:60, 0:80].astype(np.float64)
    ramp = 2.0 * rr + 3.0 * cc  # bilinear interpolation of a linear ramp is exact
    out = reg.warp(ramp)
    pts = np.argwhere(reg.valid)[::97].astype(float)
    src = reg.to_infrared(pts)
    inside = (src[:, 0] <= 59) & (src[:, 1] <= 79) & (src >= 0).all(axis=1)
    expected = 2.0 * src[inside, 0] + 3.0 * src[inside, 1]
    got = out[pts[inside, 0].astype(int), pts[inside, 1].astype(int)]
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_stacks_and_rgb_are_warped_plane_by_plane(image):
    reg = similarity(0.5, 4.0, (3.0, 5.0), (40, 60), (70, 100))
    stack = np.stack([image, image[::-1], 255 - image])
    out = reg.warp(stack)
    assert out.shape == (3, 70, 100)
    for k in range(3):
        np.testing.assert_array_equal(out[k], reg.warp(stack[k]))
    rgb = np.stack([image, image * 0.5, 255 - image], axis=-1).astype(np.uint8)
    out_rgb = reg.warp(rgb)
    assert out_rgb.shape == (70, 100, 3) and out_rgb.dtype == np.float32
    for k in range(3):
        np.testing.assert_array_equal(out_rgb[..., k], reg.warp(rgb[..., k]))


def test_wrong_shape_is_refused_naming_both_shapes(image):
    reg = translation(1, 1)
    with pytest.raises(ValueError, match=r"shape \(41, 60\).*40 x 60 px"):
        reg.warp(np.zeros((41, 60)))
    with pytest.raises(RegistrationError, match=r"image of 40 x 60 px.*not infrared 41 x 60"):
        reg.check_shapes((41, 60), (40, 60))


def test_inputs_are_not_modified(image):
    before = image.copy()
    translation(2.5, 1.5).warp(image, fill=np.nan)
    np.testing.assert_array_equal(image, before)


# -- overlap and the crop rectangle ----------------------------------------------------------


def test_overlap_of_a_smaller_infrared_frame_inside_the_visible_one():
    # The infrared frame (40 x 60, at half the resolution) covers 80 x 120 visible px.
    reg = similarity(0.5, 0.0, (-10.0, -10.0), (40, 60), (200, 300))
    assert reg.overlap == pytest.approx(80 * 120 / (200 * 300), rel=0.03)
    assert reg.overlap_smaller == pytest.approx(1.0, abs=0.03)
    r0, c0, r1, c1 = reg.overlap_box()
    assert (r1 - r0, c1 - c0) == (80, 120)
    assert reg.valid[r0:r1, c0:c1].all()


def test_largest_rectangle_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(10):
        reg = similarity(
            rng.uniform(0.5, 2),
            rng.uniform(-30, 30),
            rng.uniform(-10, 10, 2),
            (int(rng.integers(8, 20)), int(rng.integers(8, 20))),
            (int(rng.integers(8, 20)), int(rng.integers(8, 20))),
        )
        mask = reg.valid
        if not mask.any():
            continue
        r0, c0, r1, c1 = largest_rectangle(mask)
        assert mask[r0:r1, c0:c1].all()
        h, w = mask.shape
        best = 0
        for a in range(h):
            for b in range(a + 1, h + 1):
                for c in range(w):
                    for d in range(c + 1, w + 1):
                        if (b - a) * (d - c) > best and mask[a:b, c:d].all():
                            best = (b - a) * (d - c)
        assert (r1 - r0) * (c1 - c0) == best


def test_largest_rectangle_refuses_a_non_convex_mask():
    mask = np.ones((5, 5), bool)
    mask[2, 2] = False
    with pytest.raises(ValueError, match="not convex"):
        largest_rectangle(mask)
    assert largest_rectangle(np.zeros((3, 3), bool)) == (0, 0, 0, 0)


# -- the file format -------------------------------------------------------------------------


def test_json_round_trip(tmp_path):
    reg = similarity(0.4, -3.0, (12.0, 4.0), (48, 64), (120, 160))
    path = reg.save(tmp_path / "rig.json")
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT and data["version"] == 1
    assert data["model"] == "similarity"
    assert data["infrared_shape"] == [48, 64] and data["visible_shape"] == [120, 160]
    assert '"infrared_shape": [48, 64]' in path.read_text()  # one line per list: readable
    back = Registration.load(path)
    np.testing.assert_array_equal(back.matrix, reg.matrix)
    assert (back.model, back.infrared_shape, back.visible_shape) == (
        "similarity",
        (48, 64),
        (120, 160),
    )
    assert back.overlap == pytest.approx(reg.overlap)


def test_json_keeps_landmarks_and_residuals():
    from napari_resfuse.register import register_landmarks

    ir = np.array([[0.0, 0.0], [0.0, 30.0], [30.0, 0.0], [30.0, 31.0]])
    reg = register_landmarks(ir, ir * 2 + 5, infrared_shape=(40, 50), visible_shape=(90, 110))
    back = Registration.from_json(reg.to_json())
    np.testing.assert_array_equal(back.residuals, reg.residuals)
    np.testing.assert_array_equal(back.landmarks[0], ir)
    assert back.method == "landmarks" and back.rms == reg.rms


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something else"}, "is not a 'napari-resfuse registration' document"),
        ({"version": 2}, "format version 2"),
        ({"matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 0]]}, "not invertible"),
        ({"matrix": [[1, 0, 0], [2, 0, 0], [0, 0, 1]]}, "not invertible"),
        ({"matrix": [[1, 0, None], [0, 1, 0], [0, 0, 1]]}, "non-finite|numbers"),
        ({"matrix": [[1, 0, 0], [0, 1, 0]]}, None),  # 2 x 3 affine: accepted
        ({"matrix": [[1, 0], [0, 1]]}, "3 x 3"),
        ({"model": "rigid"}, "unknown model"),
        ({"matrix": [[1, 0, 0], [0, 1, 0], [0.01, 0, 1]]}, "must end with the row"),
        ({"infrared_shape": [40]}, "infrared_shape"),
    ],
)
def test_bad_files_are_refused(tmp_path, change, message):
    data = json.loads(translation(1, 2).to_json())
    data.update(change)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    if message is None:
        Registration.load(path)
        return
    with pytest.raises(RegistrationError, match=message) as info:
        Registration.load(path)
    assert "bad.json" in str(info.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        Registration.load(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(RegistrationError, match="not valid JSON"):
        Registration.load(tmp_path / "broken.json")


def test_matrix_is_checked_and_read_only():
    with pytest.raises(ValueError, match="non-finite"):
        Registration(np.full((3, 3), np.nan))
    reg = translation(1, 1)
    with pytest.raises(ValueError):
        reg.matrix[0, 0] = 2.0


# -- automatic registration: input checks and plausibility -----------------------------------


def test_grey_plane_of_rgb_and_stacks():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    luma = rgb.astype(float) @ [0.299, 0.587, 0.114]
    np.testing.assert_allclose(grey_plane("x", rgb), (luma - luma.min()) / np.ptp(luma))
    stack = rng.uniform(size=(4, 30, 40))
    first = stack[0]
    np.testing.assert_allclose(grey_plane("x", stack), (first - first.min()) / np.ptp(first))


@pytest.mark.parametrize(
    ("infrared", "message"),
    [
        (np.full((40, 40), np.nan), "infrared image contains NaN"),
        (np.zeros((40, 40)), "infrared image is constant"),
        (np.arange(40.0), "infrared image must be a numeric array of at least 2 dimensions"),
        (np.ones((8, 40)).cumsum(0), "infrared image of 8 x 40 px is too small"),
        (np.array([["a"] * 20] * 20), "infrared image must be a numeric array"),
    ],
)
def test_register_refuses_bad_input_clearly(infrared, message):
    visible = np.random.default_rng(0).uniform(size=(40, 40))
    with pytest.raises(ValueError, match=message):
        register(infrared, visible)


def test_register_refuses_unknown_model():
    img = np.random.default_rng(0).uniform(size=(40, 40))
    with pytest.raises(ValueError, match="unknown model 'rigid'"):
        register(img, img, model="rigid")


def test_implausible_geometry_is_an_error_with_the_numbers():
    mirrored = Registration(
        [[1, 0, 0], [0, -1, 59], [0, 0, 1]], infrared_shape=(40, 60), visible_shape=(40, 60)
    )
    with pytest.raises(RegistrationError, match="mirrors"):
        check_plausible(mirrored)
    stretched = Registration(
        [[1, 0, 0], [0, 2, 0], [0, 0, 1]], infrared_shape=(40, 60), visible_shape=(40, 60)
    )
    with pytest.raises(RegistrationError, match=r"stretches one axis 2\.00 times"):
        check_plausible(stretched)
    apart = translation(0, 50)  # 10 of 60 columns shared
    with pytest.raises(RegistrationError, match=r"only 16.7 % of the smaller frame"):
        check_plausible(apart)
    check_plausible(translation(0, 20))  # 2/3 shared: fine
    tiny = similarity(40.0, 0, (0, 0), (40, 60), (40, 60))
    with pytest.raises(RegistrationError, match="scale ratio of 40"):
        check_plausible(tiny)


# -- the unaligned sample --------------------------------------------------------------------


def test_unaligned_sample_is_the_bundled_scene_through_its_known_transform():
    from napari_resfuse import load_sample
    from napari_resfuse.sample import UNALIGNED_SHAPE, load_unaligned_sample

    ir, vis, truth = load_unaligned_sample()
    bundled_ir, bundled_vis = load_sample()
    assert ir.shape == UNALIGNED_SHAPE and ir.dtype == np.uint8
    np.testing.assert_array_equal(vis, bundled_vis)
    assert truth.scale == pytest.approx(1 / 1.6) and truth.rotation == pytest.approx(5.0)
    assert truth.overlap_smaller == pytest.approx(1.0, abs=1e-3)  # the IR view is inside
    # Warped back onto the visible grid, the coarse infrared image matches the bundled one
    # (up to the detail the coarser pixels lose).
    back = truth.warp(ir)
    r0, c0, r1, c1 = truth.overlap_box()
    error = np.abs(back[r0:r1, c0:c1] - bundled_ir[r0:r1, c0:c1].astype(np.float32))
    assert np.median(error) < 1.0 and error.mean() < 1.0
    # A wrong transform (1 px off) matches clearly worse.
    off = Registration(
        truth.matrix + np.array([[0, 0, 1.0 / 1.6], [0, 0, 0], [0, 0, 0]]),
        model="similarity",
        infrared_shape=truth.infrared_shape,
        visible_shape=truth.visible_shape,
    )
    off_error = np.abs(off.warp(ir)[r0:r1, c0:c1] - bundled_ir[r0:r1, c0:c1].astype(np.float32))
    assert off_error.mean() > error.mean() * 1.5


def test_register_end_to_end_on_an_inverted_crop_with_rgb_and_stacks():
    """The glue around the estimator: RGB visible (luma), infrared stack (first plane), shapes,
    info; the pair is easy (same scale), what is checked is the plumbing."""
    from scipy import ndimage

    noise = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((200, 240)), 3)
    grey = ((noise - noise.min()) / np.ptp(noise) * 255).astype(np.uint8)
    rgb = np.stack([grey, grey, grey], axis=-1)
    ir = (255 - grey[20:170, 30:220]).astype(np.float32)
    stack = np.stack([ir, np.zeros_like(ir)])  # the second plane is ignored
    rgb_before, stack_before = rgb.copy(), stack.copy()
    reg = register(stack, rgb, model="translation")
    assert reg.method == "auto" and reg.info["converged"] is True
    assert (reg.infrared_shape, reg.visible_shape) == ((150, 190), (200, 240))
    np.testing.assert_allclose(reg.matrix, [[1, 0, -20], [0, 1, -30], [0, 0, 1]], atol=0.3)
    assert reg.overlap == pytest.approx(150 * 190 / (200 * 240), abs=0.01)
    np.testing.assert_array_equal(rgb, rgb_before)
    np.testing.assert_array_equal(stack, stack_before)


def test_register_stops_on_request():
    from napari_resfuse.register import RegistrationCancelled

    rng = np.random.default_rng(2)
    img = rng.uniform(size=(64, 64))
    with pytest.raises(RegistrationCancelled, match="stopped on request"):
        register(img, img, should_stop=lambda: True)


def test_large_translations_and_scale_ratios_are_valid_matrices():
    # A 4000 x 3000 visible frame seen by a camera with 16 times coarser pixels, far off.
    reg = Registration([[1 / 16, 0, -4000.0], [0, 1 / 16, 3500.0], [0, 0, 1]])
    assert reg.scale == pytest.approx(1 / 16)
