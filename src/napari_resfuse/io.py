"""Reading and writing images and stacks; nothing else.

TIFF files (``.tif``/``.tiff``) go through tifffile, so multi-page stacks and float data keep
their shape and dtype; other formats (PNG, JPEG, BMP, ...) through imageio.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "from_unit_range",
    "match_pairs",
    "output_dtype",
    "pair_output_name",
    "read_image",
    "write_image",
]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
_TIFF = (".tif", ".tiff")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image or a multi-page TIFF stack as an array (never modified afterwards).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist")
    try:
        if path.suffix.lower() in _TIFF:
            import tifffile

            return np.asarray(tifffile.imread(path))
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except Exception as exc:  # every reader error means "not an image we can read"
        raise ValueError(f"could not read {str(path)!r} as an image: {exc}") from exc


def output_dtype(*dtypes: np.dtype) -> np.dtype:
    """The dtype of an output written for inputs of these dtypes: the widest integer type
    among them, or float32 if any of them is a float."""
    dtypes = [np.dtype(d) for d in dtypes]
    if any(d.kind == "f" for d in dtypes):
        return np.dtype(np.float32)
    return max(dtypes, key=lambda d: np.iinfo(d).max)


def pair_output_name(name: str, infrared_path: str | Path, dtype: np.dtype) -> str:
    """The file name of a pair's fused output when fusing folders: TIFF (lossless) for TIFF or
    float inputs, PNG otherwise."""
    lossless_tiff = Path(infrared_path).suffix.lower() in _TIFF or np.dtype(dtype).kind == "f"
    return f"{name}{'.tif' if lossless_tiff else '.png'}"


def from_unit_range(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Map a ``[0, 1]`` image to ``dtype``: integers use their full range (rounded, clipped),
    floats stay in ``[0, 1]`` as float32."""
    dtype = np.dtype(dtype)
    clipped = np.clip(image, 0.0, 1.0)
    if dtype.kind in "ui":
        top = np.iinfo(dtype).max
        return np.round(clipped * top).astype(dtype)
    return clipped.astype(np.float32)


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write ``image`` as is (dtype kept); PNG/JPEG/BMP need an 8- or 16-bit integer image."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(
            f"cannot write {str(path)!r}: unknown image format {suffix!r}; use one of "
            f"{', '.join(IMAGE_SUFFIXES)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in _TIFF:
        import tifffile

        # A last axis of 3 or 4 is colour; anything else is a grey image or a stack of planes.
        color = image.ndim >= 3 and image.shape[-1] in (3, 4)
        tifffile.imwrite(path, image, photometric="rgb" if color else "minisblack")
        return path
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f"cannot write {image.dtype} data to {str(path)!r}: {suffix} holds 8- or 16-bit "
            "integers; write a .tif for float data"
        )
    import imageio.v3 as iio

    iio.imwrite(path, image)
    return path


def _images_in(folder: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }


def match_pairs(infrared_dir: str | Path, visible_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """Pairs of files with the same name stem in two folders: ``[(stem, ir_path, vis_path)]``.

    Raises
    ------
    FileNotFoundError
        A folder does not exist.
    ValueError
        No pair matches; the message lists names found in one folder only.
    """
    folders = [Path(infrared_dir), Path(visible_dir)]
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"folder {str(folder)!r} does not exist")
    ir, vis = (_images_in(f) for f in folders)
    common = sorted(set(ir) & set(vis))
    if not common:
        raise ValueError(
            f"no image names match between {str(folders[0])!r} ({_names(ir)}) and "
            f"{str(folders[1])!r} ({_names(vis)}); pairs are matched by file name"
        )
    return [(stem, ir[stem], vis[stem]) for stem in common]


def _names(found: Iterable[str]) -> str:
    found = list(found)
    if not found:
        return "no images"
    return ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
