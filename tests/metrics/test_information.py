"""Tests of the input conversion, EN and MI (napari_resfuse.metrics.information).

Expected values are worked out by hand (histograms of a few grey levels) or by plain loops over
the pixels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_resfuse.metrics._validate import to_unit_float as _to_unit_float
from napari_resfuse.metrics.information import entropy, mutual_information

# --------------------------------------------------------------------------------------------------
# _to_unit_float
# --------------------------------------------------------------------------------------------------


def test_uint8_is_divided_by_255_like_im2double():
    image = np.array([[0, 1, 128], [254, 255, 7]], dtype=np.uint8)
    out = _to_unit_float("fused", image)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, image / 255.0)


def test_integers_are_divided_by_their_type_maximum_whatever_the_content():
    image = np.array([[100, 300], [500, 900]], dtype=np.uint16)
    np.testing.assert_array_equal(_to_unit_float("x", image), image / 65535.0)
    small = np.array([[0, 7], [100, 32767]], dtype=np.int16)
    np.testing.assert_array_equal(_to_unit_float("x", small), small / 32767.0)
    # A constant image keeps its level (no stretch to 0), and bool maps to 0 and 1.
    np.testing.assert_array_equal(
        _to_unit_float("x", np.full((3, 4), 300, np.uint16)), np.full((3, 4), 300 / 65535)
    )
    mask = np.array([[True, False]])
    np.testing.assert_array_equal(_to_unit_float("x", mask), [[1.0, 0.0]])


def test_floats_on_0_1_are_taken_as_given():
    floats = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(_to_unit_float("x", floats), floats.astype(np.float64))
    np.testing.assert_array_equal(_to_unit_float("x", np.full((3, 4), 0.75)), np.full((3, 4), 0.75))


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.array([[-0.5, 0.5]]), r"fused is a float image with values in \[-0.5, 0.5\]"),
        (np.array([[0.0, 255.0]]), r"values in \[0, 255\]: float images must lie in \[0, 1\]"),
        (np.array([[0, -3]], dtype=np.int16), "fused has negative values"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_input(array, message):
    with pytest.raises(ValueError, match=message):
        _to_unit_float("fused", array)


def test_same_pixels_in_any_type_give_the_same_unit_image():
    levels = np.random.default_rng(0).integers(0, 256, (9, 11)).astype(np.uint8)
    expected = _to_unit_float("x", levels)
    np.testing.assert_array_equal(_to_unit_float("x", levels.astype(np.uint16) * 257), expected)
    np.testing.assert_array_equal(_to_unit_float("x", levels / 255.0), expected)
    # float32 carries x / 255 to 7 digits only
    float32 = (levels / 255.0).astype(np.float32)
    np.testing.assert_allclose(_to_unit_float("x", float32), expected, rtol=0, atol=1e-7)


def test_rgb_uint8_uses_matlab_rgb2gray_weights_and_rounding():
    rgb = np.zeros((1, 3, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)  # 0.298936 * 255 = 76.23 -> 76
    rgb[0, 1] = (0, 255, 0)  # 0.587043 * 255 = 149.70 -> 150
    rgb[0, 2] = (10, 20, 30)  # 2.989 + 11.741 + 3.421 = 18.15 -> 18
    np.testing.assert_array_equal(_to_unit_float("fused", rgb), [[76 / 255, 150 / 255, 18 / 255]])
    rgba = np.concatenate([rgb, np.full((1, 3, 1), 9, np.uint8)], axis=2)
    np.testing.assert_array_equal(_to_unit_float("fused", rgba), _to_unit_float("fused", rgb))


def test_input_is_not_modified():
    image = np.array([[0.1, 0.3], [0.5, 0.9]])
    copy = image.copy()
    _to_unit_float("x", image)
    np.testing.assert_array_equal(image, copy)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((0, 5)), "empty"),
        (np.array([[0.0, np.nan]]), "NaN"),
        (np.array([[0.0, np.inf]]), "NaN or infinite"),
        (np.zeros(5), "2-D"),
        (np.zeros((2, 3, 2)), "2-D"),
        (np.zeros((2, 2, 2, 2)), "2-D"),
        (np.array([["a", "b"]]), "numeric"),
        (np.zeros((2, 2), dtype=complex), "numeric"),
    ],
)
def test_bad_images_are_clear_errors_naming_the_argument(array, message):
    with pytest.raises(ValueError, match=message) as info:
        _to_unit_float("visible", array)
    assert "visible" in str(info.value)


# --------------------------------------------------------------------------------------------------
# entropy
# --------------------------------------------------------------------------------------------------


def test_entropy_of_simple_histograms():
    assert entropy(np.full((4, 4), 17, np.uint8)) == 0.0
    halves = np.array([[0, 0, 255, 255]] * 2, dtype=np.uint8)
    assert entropy(halves) == pytest.approx(1.0)
    all_levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert entropy(all_levels) == pytest.approx(8.0)
    # Histogram (1/2, 1/4, 1/4): 1.5 bits.
    three = np.array([[3, 3, 9, 200]], dtype=np.uint8)
    assert entropy(three) == pytest.approx(1.5)


def test_entropy_ignores_pixel_order_and_accepts_the_float_image():
    image = np.random.default_rng(3).integers(0, 256, (12, 10), dtype=np.uint8)
    shuffled = np.random.default_rng(4).permutation(image.ravel()).reshape(10, 12)
    assert entropy(shuffled) == pytest.approx(entropy(image))
    # A float copy spanning 0..1 is left as is by the conversion, then quantised back.
    spanning = image.copy()
    spanning[0, 0], spanning[0, 1] = 0, 255
    assert entropy(spanning / 255.0) == pytest.approx(entropy(spanning))


def test_entropy_quantises_like_im2uint8_rounding_halves_up():
    # 2.5/255 -> grey level 3 (MATLAB rounds halves away from zero), joining the pixel at 3/255:
    # histogram (1/4, 1/4, 1/2) -> 1.5 bits (round-half-to-even would give 2 -> four levels).
    image = np.array([[0.0, 1.0, 2.5 / 255, 3 / 255]])
    assert entropy(image) == pytest.approx(1.5)


# --------------------------------------------------------------------------------------------------
# mutual_information
# --------------------------------------------------------------------------------------------------


def _loop_mi(x, y):
    """MI in bits of two uint8 images from explicit counts."""
    n = x.size
    joint, px, py = {}, {}, {}
    for a, b in zip(x.ravel().tolist(), y.ravel().tolist(), strict=True):
        joint[a, b] = joint.get((a, b), 0) + 1
        px[a] = px.get(a, 0) + 1
        py[b] = py.get(b, 0) + 1
    return sum(c / n * math.log2((c / n) / (px[a] / n * py[b] / n)) for (a, b), c in joint.items())


def test_mutual_information_hand_cases():
    ir = np.array([[0, 0, 255, 255]], dtype=np.uint8)
    fused = np.array([[0, 255, 0, 255]], dtype=np.uint8)
    # IR is independent of F (0 bits); VIS = F shares its full 1 bit.
    assert mutual_information(ir, fused, fused) == pytest.approx(1.0)
    assert mutual_information(ir, ir, fused) == pytest.approx(0.0, abs=1e-12)
    # Identical images: MI(X, X) = H(X), twice.
    image = np.random.default_rng(0).integers(0, 256, (9, 11), dtype=np.uint8)
    assert mutual_information(image, image, image) == pytest.approx(2 * entropy(image))


def test_mutual_information_matches_a_loop_and_is_symmetric_in_the_sources():
    g = np.random.default_rng(5)
    ir = g.integers(0, 8, (10, 12), dtype=np.uint8) * 30
    vis = g.integers(0, 5, (10, 12), dtype=np.uint8) * 50
    fused = ((ir.astype(int) + vis) // 2).astype(np.uint8)
    expected = _loop_mi(ir, fused) + _loop_mi(vis, fused)
    assert mutual_information(ir, vis, fused) == pytest.approx(expected, abs=1e-12)
    assert mutual_information(vis, ir, fused) == pytest.approx(expected, abs=1e-12)
    # The standard MI is not the reference code's buggy 2 x EN(F).
    assert abs(expected - 2 * entropy(fused)) > 0.5


def test_mutual_information_rejects_mismatched_shapes_naming_both():
    with pytest.raises(ValueError, match="infrared and fused"):
        mutual_information(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        mutual_information(np.zeros((4, 4)), np.full((4, 4), np.nan), np.zeros((4, 4)))
