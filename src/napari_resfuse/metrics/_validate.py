"""Input checks and conversion shared by every metric (private).

Every public metric function validates its inputs with :func:`unit_triple` (or
:func:`to_unit_float` for a single image) and then calls its private core on the converted
arrays; :func:`napari_resfuse.metrics.compute_metrics` validates once and calls the cores
directly, so a triple is checked once per call whatever the number of metrics.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_same_shape", "quantise_8bit", "to_unit_float", "unit_triple"]

# MATLAB's rgb2gray weights (the rows of the inverse NTSC transform, rounded as MATLAB stores them).
_RGB2GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


def to_unit_float(name: str, image) -> np.ndarray:
    """Convert one image to a 2-D float64 array in ``[0, 1]``, as the metrics expect.

    Parameters
    ----------
    name : str
        Name of the argument, used in error messages (e.g. ``"fused"``).
    image : array_like
        A 2-D grayscale image, or an ``(H, W, 3)`` / ``(H, W, 4)`` RGB(A) image.

    Returns
    -------
    numpy.ndarray
        New float64 array of shape ``(H, W)`` with values in ``[0, 1]``; the input is never
        modified.

    Raises
    ------
    ValueError
        If the image is not 2-D (or RGB/RGBA), is empty, is not numeric, or holds NaN or inf.

    Notes
    -----
    * ``uint8`` is divided by 255, exactly as MATLAB's ``im2double`` does for the 8-bit images the
      reference code reads, so published values are reproduced.
    * ``bool`` maps to 0 and 1.
    * Every other integer or float type is scaled by the array's own minimum and maximum,
      ``(x - min) / (max - min)``, as the fusion engine does when no value range is given. A
      constant array of such a type (no range) maps to all zeros.
    * Colour images (last axis of length 3, or 4 with the alpha channel dropped) are converted to
      luminance with MATLAB's ``rgb2gray`` weights, ``0.2989 R + 0.5870 G + 0.1140 B``; for
      ``uint8`` the luminance is rounded back to ``uint8`` first, as ``rgb2gray`` does. The
      reference code itself reads the 8-bit grayscale TNO images and never converts colour.
    """
    array = np.asarray(image)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a numeric image, got an array of dtype {array.dtype}")
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        rgb = array[..., :3].astype(np.float64)
        gray = rgb @ _RGB2GRAY
        if array.dtype == np.uint8:
            array = np.clip(np.round(gray), 0, 255).astype(np.uint8)
        else:
            array = gray
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D grayscale image or an (H, W, 3) RGB image, "
            f"got an array of shape {array.shape}"
        )
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    if array.dtype == np.bool_:
        return array.astype(np.float64)
    out = array.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains NaN or infinite values")
    low, high = out.min(), out.max()
    if high == low:
        return np.zeros_like(out)
    return (out - low) / (high - low)


def check_same_shape(**images: np.ndarray) -> None:
    """Raise a ValueError naming the arguments if the given 2-D images differ in shape."""
    names = list(images)
    first = names[0]
    for other in names[1:]:
        if images[other].shape != images[first].shape:
            raise ValueError(
                f"{first} and {other} must have the same shape, got "
                f"{images[first].shape} and {images[other].shape}"
            )


def unit_triple(infrared, visible, fused) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a triple: each image by :func:`to_unit_float`, then their shapes agree."""
    ir = to_unit_float("infrared", infrared)
    vis = to_unit_float("visible", visible)
    fus = to_unit_float("fused", fused)
    check_same_shape(infrared=ir, visible=vis, fused=fus)
    return ir, vis, fus


def quantise_8bit(image: np.ndarray) -> np.ndarray:
    """MATLAB ``im2uint8`` of a ``[0, 1]`` float image: ``round(255 x)`` (halves away from 0).

    ``skimage.util.img_as_ubyte`` rounds halves to even, so it is not used here: the levels
    decide EN and MI, and MATLAB rounds halves up.
    """
    return np.clip(np.floor(image * 255.0 + 0.5), 0, 255).astype(np.intp)
