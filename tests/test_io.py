"""Reading and writing real files on disk."""

import numpy as np
import pytest

from napari_resfuse.io import (
    find_pairs,
    from_unit_range,
    output_dtype,
    output_name,
    read_image,
    write_image,
)


def test_round_trip_png_and_tiff_stack(tmp_path, rng):
    img8 = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    stack = rng.random((3, 40, 50)).astype(np.float32)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "a.png", img8)), img8)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "s.tif", stack)), stack)


def test_read_errors_are_one_line_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        read_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    empty = tmp_path / "empty.png"
    empty.touch()
    for path, reason in ((bad, "not .png data, or damaged"), (empty, "empty file")):
        with pytest.raises(ValueError) as info:
            read_image(path)
        message = str(info.value)
        assert message == f"{str(path)!r} is not a readable image ({reason})"
        assert "\n" not in message and "pyav" not in message and "pip" not in message
    with pytest.raises(ValueError, match="is a folder, not an image file"):
        read_image(tmp_path)


def test_grey_alpha_png_is_read_as_grey_with_a_warning(tmp_path):
    import imageio.v3 as iio

    grey = np.arange(80 * 64, dtype=np.uint32).reshape(64, 80).astype(np.uint8)
    iio.imwrite(tmp_path / "la.png", np.stack([grey, np.full_like(grey, 255)], axis=-1))
    with pytest.warns(UserWarning, match="grey \\+ alpha: the alpha channel is ignored"):
        image = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(image, grey)


def test_write_refuses_float_png_and_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"write a \.tif"):
        write_image(tmp_path / "f.png", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="unknown image format"):
        write_image(tmp_path / "f.xyz", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"\.jpg holds 8-bit integers"):
        write_image(tmp_path / "f.jpg", np.zeros((4, 4), np.uint16))
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


def test_bit_depth_conversion():
    assert output_dtype(np.uint8, np.uint8) == np.uint8
    assert output_dtype(np.uint8, np.uint16) == np.uint16
    assert output_dtype(np.uint8, np.float64) == np.float32
    x = np.array([0.0, 0.5, 1.0, 1.2, -0.1])
    assert from_unit_range(x, np.uint8).tolist() == [0, 128, 255, 255, 0]
    assert from_unit_range(x, np.uint16).tolist() == [0, 32768, 65535, 65535, 0]


def test_find_pairs_by_stem_reports_unmatched(tmp_path):
    (tmp_path / "ir").mkdir()
    (tmp_path / "vis").mkdir()
    for name in ("a.png", "b.png", "only_ir.png", ".hidden.png"):
        (tmp_path / "ir" / name).touch()
    for name in ("a.png", "b.tif", "notes.txt"):
        (tmp_path / "vis" / name).touch()
    pairs = find_pairs(tmp_path / "ir", tmp_path / "vis")
    assert pairs.names == ["a", "b"]
    assert [p.name for p in pairs.unmatched] == ["only_ir.png"]  # never dropped silently
    assert pairs.unmatched_items() == {
        "ir/only_ir.png": "no visible image named 'only_ir' (pairs are matched by file name "
        "without extension)"
    }
    assert find_pairs(tmp_path).names == ["a", "b"]  # one folder holding ir/ and vis/
    with pytest.raises(ValueError, match="no infrared and visible images pair"):
        find_pairs(tmp_path / "ir", tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_pairs(tmp_path / "nowhere", tmp_path / "vis")


def test_output_name_is_lossless_and_keeps_tiff():
    assert output_name("a", "ir/a.png", np.uint8) == "a.png"
    assert output_name("a", "ir/a.jpg", np.uint16) == "a.png"
    assert output_name("a", "ir/a.tif", np.uint8) == "a.tif"
    assert output_name("a", "ir/a.png", np.float32) == "a.tif"
    assert output_name("a", "ir/a.png", np.int32) == "a.tif"  # PNG cannot hold it


def test_the_library_never_imports_the_command_line():
    """Layering: only ``cli/`` imports ``cli/`` (the library, batch and demo use ``io``)."""
    import ast
    from pathlib import Path

    import napari_resfuse

    root = Path(napari_resfuse.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if "cli" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(n.lstrip(".").split(".")[0] == "cli" or ".cli" in n for n in names):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []
