"""Simple reference fusions: the pixel average and a two-scale choose-max rule.

Both take the infrared and the visible image (2-D, same shape, ``uint8`` or float) and return the
fused image as a float32 array of the same shape, unclipped. The private helpers here (input
checks, padding, box filters) are shared by the other baseline modules.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["average", "two_scale_max"]


# --------------------------------------------------------------------------------------------
# Shared helpers (used by gff.py, cbf.py and wls.py too)
# --------------------------------------------------------------------------------------------


def _as_unit_float(image, name: str) -> np.ndarray:
    """Return ``image`` as a new float64 2-D array, ``uint8`` divided by 255.

    Raises ``ValueError`` for anything that is not a non-empty, finite, 2-D ``uint8`` or float
    array. The input is never modified (the result is always a copy).
    """
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D (grey) image; got an array with shape {array.shape}"
        )
    if array.size == 0:
        raise ValueError(f"{name} image is empty (shape {array.shape})")
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"{name} must be uint8 (scaled by 1/255) or a float array in [0, 1]; got dtype "
            f"{array.dtype}. Convert it to float in [0, 1] first."
        )
    out = array.astype(np.float64)  # always a copy
    if not np.all(np.isfinite(out)):
        bad = int(np.count_nonzero(~np.isfinite(out)))
        raise ValueError(f"{name} image contains {bad} NaN or infinite values")
    return out


def _as_unit_pair(infrared, visible) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert both sources (see `_as_unit_float`); shapes must match."""
    ir = _as_unit_float(infrared, "infrared")
    vis = _as_unit_float(visible, "visible")
    if ir.shape != vis.shape:
        raise ValueError(
            f"infrared and visible images must have the same shape; got infrared {ir.shape} "
            f"and visible {vis.shape}"
        )
    return ir, vis


def _check_int(value, name: str, minimum: int = 0) -> int:
    """Return ``value`` as an int after checking that it is an integer ≥ ``minimum``."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_odd(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking that it is an odd integer ≥ ``minimum``."""
    if isinstance(value, bool) or int(value) != value or value < minimum or value % 2 == 0:
        raise ValueError(f"{name} must be an odd integer >= {minimum}; got {value!r}")
    return int(value)


def _check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float after checking that it is finite and > 0 (or ≥ 0)."""
    number = float(value)
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}; got {value!r}")
    return number


def _pad_reflect(image: np.ndarray, pad: int) -> np.ndarray:
    """Pad by reflection without repeating the edge pixel (numpy ``reflect``).

    Where the image is not larger than the pad (on its shorter side), replicate the edge pixel
    instead, as `napari_resfuse.method.decompose` does.
    """
    mode = "reflect" if pad < min(image.shape) else "edge"
    return np.pad(image, pad, mode=mode)


def _box_mean(image: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Mean over ``size`` × ``size`` windows, same shape as ``image``.

    ``mode`` is ``"reflect"`` (no edge repeat, numpy's ``reflect`` / scipy's ``mirror``; the edge
    pixel replicated where the image is not larger than the pad, as `_pad_reflect`) or
    ``"edge"`` (replicate the edge pixel, MATLAB's ``imfilter(..., 'replicate')``).
    """
    if mode == "reflect":
        scipy_mode = "mirror" if size // 2 < min(image.shape) else "nearest"
    else:
        scipy_mode = {"edge": "nearest"}.get(mode, mode)
    return ndimage.uniform_filter(image, size, mode=scipy_mode)


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def average(infrared, visible) -> np.ndarray:
    """Fuse two images by their pixel-wise mean.

    Parameters
    ----------
    infrared, visible : array_like
        2-D images of the same shape, ``uint8`` (divided by 255) or float (used as given,
        normally in ``[0, 1]``). They are not modified.

    Returns
    -------
    ndarray
        float32, the input shape: ``F = (I_1 + I_2) / 2``.

    Raises
    ------
    ValueError
        If an input is not 2-D, is empty, contains NaN/inf, has an unsupported dtype, or the
        shapes differ.

    Notes
    -----
    The simplest fusion rule and the usual lower reference in fusion comparisons; identical
    inputs are returned unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> average(np.zeros((2, 2)), np.ones((2, 2)))
    array([[0.5, 0.5],
           [0.5, 0.5]], dtype=float32)
    """
    ir, vis = _as_unit_pair(infrared, visible)
    return ((ir + vis) / 2.0).astype(np.float32)


def two_scale_max(
    infrared,
    visible,
    *,
    kernel_size: int = 31,
    base_weights: Sequence[float] = (0.5, 0.5),
) -> np.ndarray:
    """Two-scale fusion with an averaged base and a choose-max-absolute detail rule.

    Parameters
    ----------
    infrared, visible : array_like
        2-D images of the same shape, ``uint8`` (divided by 255) or float. Not modified.
    kernel_size : int, optional
        Odd side of the mean (box) filter ``Z`` of the decomposition, default 31.
    base_weights : pair of float, optional
        ``(λ_1, λ_2)`` for the base layers of the infrared and visible image, default
        ``(0.5, 0.5)`` (the plain average).

    Returns
    -------
    ndarray
        float32, the input shape, unclipped.

    Raises
    ------
    ValueError
        For bad images (see `average`), an even or non-positive ``kernel_size``, or
        ``base_weights`` that are not two finite numbers.

    Notes
    -----
    The decomposition is eq. 1–2 of Zhang et al. (2022), as in ``METHOD.md``:
    ``I_k^b = I_k * Z`` with ``Z`` the ``kernel_size`` × ``kernel_size`` mean filter, borders
    reflected without repeating the edge pixel (replicated where the image is not larger than
    the pad), and ``I_k^d = I_k - I_k^b``. The fused image is

    .. math::

        F = λ_1 I_1^b + λ_2 I_2^b + \\begin{cases} I_1^d & |I_1^d| \\ge |I_2^d| \\\\
        I_2^d & \\text{otherwise} \\end{cases}

    the "choose max" detail rule that the paper cites as the usual method (ties take the
    infrared detail). With the default weights, identical inputs are returned unchanged.

    References
    ----------
    .. [1] Zhang, Li, Zhu & Du, "An infrared and visible image fusion algorithm based on
       ResNet-152", Multimedia Tools and Applications 81 (2022), eq. 1–2.
    .. [2] Li, Kang & Hu, "Image fusion with guided filtering", IEEE Trans. Image Process.
       22(7):2864–2875 (2013), for the two-scale decomposition with a mean filter.
    """
    ir, vis = _as_unit_pair(infrared, visible)
    size = _check_odd(kernel_size, "kernel_size", minimum=1)
    weights = np.asarray(base_weights, dtype=np.float64)
    if weights.shape != (2,) or not np.all(np.isfinite(weights)):
        raise ValueError(f"base_weights must be two finite numbers; got {base_weights!r}")
    base_ir = _box_mean(ir, size, "reflect")  # eq. 1
    base_vis = _box_mean(vis, size, "reflect")
    detail_ir = ir - base_ir  # eq. 2
    detail_vis = vis - base_vis
    fused_base = weights[0] * base_ir + weights[1] * base_vis
    fused_detail = np.where(np.abs(detail_ir) >= np.abs(detail_vis), detail_ir, detail_vis)
    return (fused_base + fused_detail).astype(np.float32)
