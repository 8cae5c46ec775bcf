"""Behaviour every baseline shares: registry, shapes, dtypes, input checks, no in-place writes."""

import numpy as np
import pytest

from napari_resfuse.baselines import BASELINES, average, cbf, gff, two_scale_max, wls

CLASSIC = ["average", "two_scale_max", "gff", "cbf", "wls"]


def _pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random(shape), rng.random(shape)


def test_registry_holds_the_classic_baselines():
    assert set(CLASSIC) <= set(BASELINES)
    expected = {
        "average": average,
        "two_scale_max": two_scale_max,
        "gff": gff,
        "cbf": cbf,
        "wls": wls,
    }
    for name, func in expected.items():
        assert BASELINES[name] is func


@pytest.mark.parametrize("name", CLASSIC)
@pytest.mark.parametrize("shape", [(33, 47), (40, 31), (5, 7), (1, 1), (2, 9)])
def test_shape_and_dtype_are_preserved(name, shape):
    ir, vis = _pair(shape)
    fused = BASELINES[name](ir, vis)
    assert fused.shape == shape
    assert fused.dtype == np.float32
    assert np.all(np.isfinite(fused))


@pytest.mark.parametrize("name", CLASSIC)
def test_identical_inputs_give_that_input_back(name):
    # Every classic baseline promises this: equal sources give equal weights (or equal layers).
    image, _ = _pair((37, 45), seed=1)
    fused = BASELINES[name](image, image)
    np.testing.assert_allclose(fused, image, atol=1e-6)


@pytest.mark.parametrize("name", CLASSIC)
def test_uint8_input_is_divided_by_255(name):
    rng = np.random.default_rng(2)
    ir = rng.integers(0, 256, (24, 30), dtype=np.uint8)
    vis = rng.integers(0, 256, (24, 30), dtype=np.uint8)
    from_uint8 = BASELINES[name](ir, vis)
    from_float = BASELINES[name](ir / 255.0, vis / 255.0)
    np.testing.assert_allclose(from_uint8, from_float, atol=1e-6)


@pytest.mark.parametrize("name", CLASSIC)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_inputs_are_not_modified(name, dtype):
    rng = np.random.default_rng(3)
    if dtype is np.uint8:
        ir = rng.integers(0, 256, (20, 26), dtype=np.uint8)
        vis = rng.integers(0, 256, (20, 26), dtype=np.uint8)
    else:
        ir, vis = (a.astype(dtype) for a in _pair((20, 26), seed=3))
    ir_before, vis_before = ir.copy(), vis.copy()
    BASELINES[name](ir, vis)
    np.testing.assert_array_equal(ir, ir_before)
    np.testing.assert_array_equal(vis, vis_before)
    # Read-only inputs are accepted too (nothing is written to them).
    ir.flags.writeable = False
    vis.flags.writeable = False
    BASELINES[name](ir, vis)


@pytest.mark.parametrize("name", CLASSIC)
def test_shape_mismatch_names_both_shapes(name):
    with pytest.raises(ValueError, match=r"infrared \(10, 12\).*visible \(10, 13\)"):
        BASELINES[name](np.zeros((10, 12)), np.zeros((10, 13)))


@pytest.mark.parametrize("name", CLASSIC)
@pytest.mark.parametrize(
    ("ir", "vis", "message"),
    [
        (np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), "2-D"),
        (np.zeros(16), np.zeros(16), "2-D"),
        (np.zeros((0, 4)), np.zeros((0, 4)), "empty"),
        (np.full((4, 4), np.nan), np.zeros((4, 4)), "NaN"),
        (np.zeros((4, 4)), np.full((4, 4), np.inf), "NaN or infinite"),
        (np.zeros((4, 4), dtype=np.int32), np.zeros((4, 4), dtype=np.int32), "dtype int32"),
    ],
)
def test_bad_inputs_raise_clear_errors(name, ir, vis, message):
    with pytest.raises(ValueError, match=message):
        BASELINES[name](ir, vis)


def test_error_names_the_offending_source():
    with pytest.raises(ValueError, match="visible"):
        average(np.zeros((4, 4)), np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="infrared"):
        average(np.zeros((4, 4, 2)), np.zeros((4, 4)))
