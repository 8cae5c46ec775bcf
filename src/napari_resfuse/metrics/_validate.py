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

    The rule depends on the data type only, never on the content, so the same pixels give the
    same values whatever type carries them (``uint8`` ``x``, ``float`` ``x / 255`` and ``uint16``
    ``257 x`` all become ``x / 255``).

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
        If the image is not 2-D (or RGB/RGBA), is empty or not numeric, holds NaN or inf, is a
        float image with values outside ``[0, 1]``, or an integer image with negative values.

    Notes
    -----
    * Integers are divided by the largest value of their type, as MATLAB's ``im2double`` does
      for unsigned types: ``uint8`` by 255 (so the 8-bit images behind the published values are
      read exactly as the reference code reads them), ``uint16`` by 65535, ``int16`` by 32767.
      Negative values are refused.
    * ``bool`` maps to 0 and 1.
    * Floats are taken as given and must lie in ``[0, 1]`` (the range the fusion engine
      returns); anything else is refused rather than rescaled, because a stretch by the image's
      own minimum and maximum would make the values depend on the content.
    * Colour images (last axis of length 3, or 4 with the alpha channel dropped) are converted to
      luminance with MATLAB's ``rgb2gray`` weights, ``0.2989 R + 0.5870 G + 0.1140 B``; for
      integer types the luminance is rounded back to the type first, as ``rgb2gray`` does. The
      reference code itself reads the 8-bit grayscale TNO images and never converts colour.
    """
    array = np.asarray(image)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a numeric image, got an array of dtype {array.dtype}")
    colour = array.ndim == 3 and array.shape[-1] in (3, 4)
    if array.ndim != 2 and not colour:
        raise ValueError(
            f"{name} must be a 2-D grayscale image or an (H, W, 3) RGB image, "
            f"got an array of shape {array.shape}"
        )
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if colour:
        array = array[..., :3]
    if array.dtype.kind == "f":
        values = array.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} contains NaN or infinite values")
        low, high = values.min(), values.max()
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"{name} is a float image with values in [{low:g}, {high:g}]: float images must "
                "lie in [0, 1] (scale it, or pass integers: uint8 is divided by 255, uint16 by "
                "65535)"
            )
        return np.clip(values @ _RGB2GRAY, 0.0, 1.0) if colour else values
    top = 1 if array.dtype == np.bool_ else np.iinfo(array.dtype).max
    if array.dtype.kind == "i" and array.min() < 0:
        raise ValueError(
            f"{name} has negative values (down to {array.min()}): integer images must be >= 0 "
            f"(they are divided by the largest {array.dtype} value, {top})"
        )
    values = array.astype(np.float64)
    if colour:
        values = np.clip(np.round(values @ _RGB2GRAY), 0, top)
    # A division, as MATLAB's im2double: skimage's img_as_float multiplies by 1 / top, which is
    # 1 ulp off for some levels and would make uint16 257 x differ from uint8 x.
    return values / top


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
