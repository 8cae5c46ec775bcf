"""Reading and writing real files on disk."""

import numpy as np
import pytest

from napari_resfuse.io import from_unit_range, match_pairs, output_dtype, read_image, write_image


def test_round_trip_png_and_tiff_stack(tmp_path, rng):
    img8 = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    stack = rng.random((3, 40, 50)).astype(np.float32)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "a.png", img8)), img8)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "s.tif", stack)), stack)


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        read_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match=r"could not read .*bad\.png"):
        read_image(bad)


def test_write_refuses_float_png_and_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"write a \.tif"):
        write_image(tmp_path / "f.png", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="unknown image format"):
        write_image(tmp_path / "f.xyz", np.zeros((4, 4), np.uint8))


def test_bit_depth_conversion():
    assert output_dtype(np.uint8, np.uint8) == np.uint8
    assert output_dtype(np.uint8, np.uint16) == np.uint16
    assert output_dtype(np.uint8, np.float64) == np.float32
    x = np.array([0.0, 0.5, 1.0, 1.2, -0.1])
    assert from_unit_range(x, np.uint8).tolist() == [0, 128, 255, 255, 0]
    assert from_unit_range(x, np.uint16).tolist() == [0, 32768, 65535, 65535, 0]


def test_match_pairs_by_stem(tmp_path):
    (tmp_path / "ir").mkdir()
    (tmp_path / "vis").mkdir()
    for name in ("a.png", "b.png", "only_ir.png"):
        (tmp_path / "ir" / name).touch()
    for name in ("a.png", "b.tif", "notes.txt"):
        (tmp_path / "vis" / name).touch()
    pairs = match_pairs(tmp_path / "ir", tmp_path / "vis")
    assert [p[0] for p in pairs] == ["a", "b"]
    with pytest.raises(ValueError, match="no image names match"):
        match_pairs(tmp_path / "ir", tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        match_pairs(tmp_path / "nowhere", tmp_path / "vis")
