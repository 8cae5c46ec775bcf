"""Reading and writing one image or multi-page stack.

TIFF files (``.tif``/``.tiff``) go through tifffile, so multi-page stacks and float data keep
their shape and dtype; other formats (PNG, JPEG, BMP) through Pillow (imageio's ``pillow``
plugin). Every write is atomic (:func:`napari_resfuse.io.files.atomic_path`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .files import atomic_path

__all__ = [
    "IMAGE_SUFFIXES",
    "TIFF_SUFFIXES",
    "check_output_format",
    "from_unit_range",
    "output_dtype",
    "read_image",
    "write_image",
]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
TIFF_SUFFIXES = (".tif", ".tiff")


def _unreadable(path: Path, reason: str) -> ValueError:
    return ValueError(f"{str(path)!r} is not a readable image ({reason})")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image or a multi-page TIFF stack as an array (never modified afterwards).

    A grey + alpha image (PNG ``LA``) is read as its grey channel, with a warning: the alpha
    channel is not part of the fusion.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The path is a folder, the file is empty or not a readable image (one line naming it).
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not an image file")
    if not path.is_file():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise _unreadable(path, "empty file")
    tiff = path.suffix.lower() in TIFF_SUFFIXES
    try:
        if tiff:
            import tifffile

            image = np.asarray(tifffile.imread(path))
        else:
            import imageio.v3 as iio

            image = np.asarray(iio.imread(path, plugin="pillow"))
    except MemoryError:
        raise
    except Exception as exc:  # every reader error means "not an image we can read"
        lines = str(exc).strip().splitlines()
        detail = lines[0] if lines and tiff else ""
        reason = detail or f"not {path.suffix or 'image'} data, or damaged"
        raise _unreadable(path, reason) from exc
    if not tiff and image.ndim == 3 and image.shape[-1] == 2:
        warnings.warn(f"{str(path)!r} is grey + alpha: the alpha channel is ignored", stacklevel=2)
        image = np.ascontiguousarray(image[..., 0])
    return image


def output_dtype(*dtypes: np.dtype) -> np.dtype:
    """The dtype of an output written for inputs of these dtypes: the widest integer type
    among them, or float32 if any of them is a float."""
    dtypes = [np.dtype(d) for d in dtypes]
    if any(d.kind == "f" for d in dtypes):
        return np.dtype(np.float32)
    return max(dtypes, key=lambda d: np.iinfo(d).max)


def from_unit_range(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Map a ``[0, 1]`` image to ``dtype``: integers use their full range (rounded, clipped),
    floats stay in ``[0, 1]`` as float32."""
    dtype = np.dtype(dtype)
    clipped = np.clip(image, 0.0, 1.0)
    if dtype.kind in "ui":
        top = np.iinfo(dtype).max
        return np.round(clipped * top).astype(dtype)
    return clipped.astype(np.float32)


def check_output_format(path: str | Path, dtype: np.dtype | None = None) -> None:
    """Raise ``ValueError`` now if :func:`write_image` could not write ``dtype`` data to
    ``path`` (unknown suffix; not 8- or 16-bit integers for PNG/JPEG/BMP), so a command can
    refuse before any work."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(
            f"cannot write {str(path)!r}: unknown image format {suffix or '(no suffix)'!r}; use "
            f"one of {', '.join(IMAGE_SUFFIXES)}"
        )
    if dtype is None or suffix in TIFF_SUFFIXES:
        return
    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.uint16) or (dtype == np.uint16 and suffix != ".png"):
        holds = "8- or 16-bit integers" if suffix == ".png" else "8-bit integers"
        raise ValueError(
            f"cannot write {dtype} data to {str(path)!r}: {suffix} holds {holds}; write a "
            ".tif instead"
        )


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write ``image`` as is (dtype kept), atomically; PNG needs 8- or 16-bit integers,
    JPEG/BMP 8-bit ones. The folder is created if needed."""
    path = Path(path)
    check_output_format(path, image.dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    try:
        with atomic_path(path) as tmp:
            if suffix in TIFF_SUFFIXES:
                import tifffile

                # A last axis of 3 or 4 is colour; anything else is a grey image or a stack.
                color = image.ndim >= 3 and image.shape[-1] in (3, 4)
                tifffile.imwrite(tmp, image, photometric="rgb" if color else "minisblack")
            else:
                import imageio.v3 as iio

                # Encoded in memory, written here: a failing write (full disk) is one error.
                encoded = iio.imwrite("<bytes>", image, extension=suffix, plugin="pillow")
                with open(tmp, "wb") as handle:
                    handle.write(encoded)
    except OSError as exc:  # name the final path, not the temporary one
        raise OSError(exc.errno, f"cannot write: {exc.strerror or exc}", str(path)) from exc
    return path
