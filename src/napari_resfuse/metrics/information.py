"""Information-theoretic fusion metrics: entropy (EN) and mutual information (MI).

Also holds :func:`_to_unit_float`, the input conversion shared by every metric module, so that all
metrics see the same ``[0, 1]`` float64 image that MATLAB's ``im2double`` gives the reference code.
"""

from __future__ import annotations

import numpy as np

__all__ = ["entropy", "mutual_information"]

# MATLAB's rgb2gray weights (the rows of the inverse NTSC transform, rounded as MATLAB stores them).
_RGB2GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


def _to_unit_float(name: str, image) -> np.ndarray:
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


def _check_same_shape(**images: np.ndarray) -> None:
    """Raise a ValueError naming the arguments if the given 2-D images differ in shape."""
    names = list(images)
    first = names[0]
    for other in names[1:]:
        if images[other].shape != images[first].shape:
            raise ValueError(
                f"{first} and {other} must have the same shape, got "
                f"{images[first].shape} and {images[other].shape}"
            )


def _quantise_8bit(image: np.ndarray) -> np.ndarray:
    """MATLAB ``im2uint8`` of a ``[0, 1]`` float image: ``round(255 x)`` (halves away from 0)."""
    return np.clip(np.floor(image * 255.0 + 0.5), 0, 255).astype(np.intp)


def _entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy in bits of a histogram given as counts."""
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log2(p)))


def entropy(image) -> float:
    """Entropy (EN) of an image in bits, as MATLAB's ``entropy`` computes it.

    Parameters
    ----------
    image : array_like
        Usually the fused image; converted with :func:`_to_unit_float` (``uint8`` / 255).

    Returns
    -------
    float
        ``EN = -sum_k p_k log2 p_k`` in ``[0, 8]``; higher is better (more information).

    Notes
    -----
    MATLAB's ``entropy(I)`` converts a ``double`` image to ``uint8`` with ``im2uint8``
    (``round(255 I)``), takes the 256-bin histogram ``imhist`` and normalises it to ``p``. For an
    8-bit image read from file this is exactly the histogram of its grey levels. The reference
    code (``analysis_Reference.m``) applies it to ``im2double(fused)``.

    References
    ----------
    .. [1] J. W. Roberts, J. A. van Aardt, F. B. Ahmed, "Assessment of image fusion procedures
       using entropy, image quality, and multispectral classification", *Journal of Applied Remote
       Sensing* 2(1), 023522, 2008.
    .. [2] MathWorks, Image Processing Toolbox, ``entropy``.
    """
    levels = _quantise_8bit(_to_unit_float("image", image))
    return _entropy_bits(np.bincount(levels.ravel(), minlength=256))


def _mutual_information_8bit(source: np.ndarray, fused: np.ndarray) -> float:
    """MI in bits between two quantised images from their 256 x 256 joint histogram."""
    joint = np.bincount((source * 256 + fused).ravel(), minlength=256 * 256).reshape(256, 256)
    h_source = _entropy_bits(joint.sum(axis=1))
    h_fused = _entropy_bits(joint.sum(axis=0))
    return h_source + h_fused - _entropy_bits(joint.ravel())


def mutual_information(infrared, visible, fused) -> float:
    """Mutual information MI = MI(IR, F) + MI(VIS, F) in bits (standard definition).

    Parameters
    ----------
    infrared, visible, fused : array_like
        Images of one shape, converted with :func:`_to_unit_float` and quantised to 256 levels
        (``round(255 x)``; for ``uint8`` input these are the original grey levels).

    Returns
    -------
    float
        ``MI(IR, F) + MI(VIS, F)``, each ``H(S) + H(F) - H(S, F)`` from the 256 x 256 joint
        histogram; in ``[0, 16]``, higher is better.

    Notes
    -----
    This is the textbook definition that fusion papers describe. It is *not* what the paper's
    Table 1 reports: the reference code's ``analysis_MI.m`` passes whole image matrices to a
    column-vector ``MutualInformation`` helper, and the value it returns is exactly twice the
    entropy of the fused image (its MI column equals ``2 * EN`` on every row of ``results.txt``).
    That bug is not reproduced here, so these values are lower than the published MI column and
    are not comparable with it.

    References
    ----------
    .. [1] G. Qu, D. Zhang, P. Yan, "Information measure for performance of image fusion",
       *Electronics Letters* 38(7), 313-315, 2002.
    """
    ir = _to_unit_float("infrared", infrared)
    vis = _to_unit_float("visible", visible)
    fus = _to_unit_float("fused", fused)
    _check_same_shape(infrared=ir, visible=vis, fused=fus)
    ir_q, vis_q, fus_q = (_quantise_8bit(x) for x in (ir, vis, fus))
    return _mutual_information_8bit(ir_q, fus_q) + _mutual_information_8bit(vis_q, fus_q)
