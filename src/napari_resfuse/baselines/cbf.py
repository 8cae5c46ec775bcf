"""Cross bilateral filter fusion (CBF), Shreyamsha Kumar (2015).

A port of the behaviour of the author's MATLAB release (``cbf_fusion_pgm.m``,
``cross_bilateral_filt2Df.m``, ``cbf_ieeeconf2011f.m``, ``covarf.m``, ``gauss_ker2D.m``,
``per_extn_im_fn.m``): each image is filtered by a bilateral filter whose range weights come from
the *other* image, the detail ``image − filtered`` gives a per-pixel significance (sum of the
eigenvalues of the horizontal and vertical covariance matrices of a 5 × 5 detail window), and the
fused image is the significance-weighted mean of the two sources. The code works on 8-bit grey
levels (0..255); so does this module internally, which is why ``sigma_r`` is in grey levels.
"""

from __future__ import annotations

import numpy as np

from .simple import _as_unit_pair, _check_odd, _check_positive, _pad_reflect

__all__ = ["cbf", "cross_bilateral_filter"]


def cross_bilateral_filter(
    image,
    guide,
    *,
    sigma_s: float = 1.8,
    sigma_r: float = 25.0,
    kernel_size: int = 11,
) -> np.ndarray:
    """Cross (joint) bilateral filter: average ``image`` with weights shaped by ``guide``.

    Parameters
    ----------
    image : array_like
        2-D float image to filter.
    guide : array_like
        2-D image, same shape, whose grey-level differences set the range weights.
    sigma_s : float, optional
        Spatial (geometric) σ in pixels, 1.8.
    sigma_r : float, optional
        Range (photometric) σ in the units of ``guide``, 25 (for grey levels 0..255).
    kernel_size : int, optional
        Odd window side, 11.

    Returns
    -------
    ndarray
        float64, the filtered image, the input shape.

    Notes
    -----
    .. math::

        y(p) = \\frac{\\sum_{q \\in Ω_p} x_1(q)\\, g_s(q - p)\\, g_r(x_2(q) - x_2(p))}
                    {\\sum_{q \\in Ω_p} g_s(q - p)\\, g_r(x_2(q) - x_2(p))},
        \\quad g_s(d) = e^{-|d|^2 / 2σ_s^2},\\; g_r(t) = e^{-t^2 / 2σ_r^2}

    over the ``kernel_size`` × ``kernel_size`` window ``Ω_p``. Borders: both images are extended
    by reflection without repeating the edge pixel (``per_extn_im_fn.m``; replicated where the
    image is not larger than the pad). Computed as a sum over the window offsets of shifted
    arrays.

    References
    ----------
    .. [1] Shreyamsha Kumar, "Image fusion based on pixel significance using cross bilateral
       filter", Signal, Image and Video Processing 9(5):1193–1204 (2015).
       doi:10.1007/s11760-013-0556-9
    """
    x1 = np.asarray(image, dtype=np.float64)
    x2 = np.asarray(guide, dtype=np.float64)
    if x1.ndim != 2 or x1.shape != x2.shape or x1.size == 0:
        raise ValueError(
            f"image and guide must be non-empty 2-D arrays of the same shape; got {x1.shape} "
            f"and {x2.shape}"
        )
    size = _check_odd(kernel_size, "kernel_size")
    sigma_s = _check_positive(sigma_s, "sigma_s")
    sigma_r = _check_positive(sigma_r, "sigma_r")
    return _cross_bilateral_pair(x1, x2, sigma_s, sigma_r, size)[0]


def _cross_bilateral_pair(
    x1: np.ndarray, x2: np.ndarray, sigma_s: float, sigma_r: float, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Filter ``x1`` guided by ``x2`` and ``x2`` guided by ``x1`` in one pass over the offsets."""
    half = size // 2
    height, width = x1.shape
    p1 = _pad_reflect(x1, half)
    p2 = _pad_reflect(x2, half)
    num1 = np.zeros_like(x1)
    den1 = np.zeros_like(x1)
    num2 = np.zeros_like(x2)
    den2 = np.zeros_like(x2)
    range_scale = -1.0 / (2.0 * sigma_r**2)
    for dy in range(-half, half + 1):
        for dx in range(-half, half + 1):
            spatial = np.exp(-(dy * dy + dx * dx) / (2.0 * sigma_s**2))  # gauss_ker2D.m
            rows = slice(half + dy, half + dy + height)
            cols = slice(half + dx, half + dx + width)
            s1 = p1[rows, cols]  # x1 at the neighbour q = p + (dy, dx)
            s2 = p2[rows, cols]
            w1 = spatial * np.exp(range_scale * (s2 - x2) ** 2)  # range from the guide x2
            w2 = spatial * np.exp(range_scale * (s1 - x1) ** 2)  # range from the guide x1
            num1 += w1 * s1
            den1 += w1
            num2 += w2 * s2
            den2 += w2
    return num1 / den1, num2 / den2


def _pixel_significance(detail: np.ndarray, window: int) -> np.ndarray:
    """Sum of the eigenvalues of the horizontal and vertical covariance of each detail window.

    ``covarf.m`` treats the rows of a ``w × w`` window as observations of ``w`` variables
    (its columns), so the sum of the eigenvalues of that covariance matrix is its trace: the sum
    of the column variances (``ddof = 1``). The vertical one, on the transposed window, is the sum
    of the row variances. Borders reflect without repeating the edge pixel.
    """
    half = window // 2
    padded = _pad_reflect(detail, half)
    height, width = detail.shape
    # Mean over each run of `window` pixels along an axis, then the sum of squared deviations
    # (two passes, as covarf.m subtracts the column means before squaring).
    col_sum = np.zeros((height, width + 2 * half))  # windows running down the columns
    row_sum = np.zeros((height + 2 * half, width))  # windows running along the rows
    for k in range(window):
        col_sum += padded[k : k + height, :]
        row_sum += padded[:, k : k + width]
    col_mean = col_sum / window
    row_mean = row_sum / window
    col_ss = np.zeros_like(col_sum)
    row_ss = np.zeros_like(row_sum)
    for k in range(window):
        col_ss += (padded[k : k + height, :] - col_mean) ** 2
        row_ss += (padded[:, k : k + width] - row_mean) ** 2
    col_var = col_ss / (window - 1)  # variance of each window column, at each window row
    row_var = row_ss / (window - 1)
    horizontal = sum(col_var[:, k : k + width] for k in range(window))  # trace of covarf(tt)
    vertical = sum(row_var[k : k + height, :] for k in range(window))  # trace of covarf(tt')
    return horizontal + vertical


def cbf(
    infrared,
    visible,
    *,
    sigma_s: float = 1.8,
    sigma_r: float = 25.0,
    kernel_size: int = 11,
    cov_window: int = 5,
) -> np.ndarray:
    """Fuse with the cross bilateral filter (CBF), Shreyamsha Kumar (2015).

    Parameters
    ----------
    infrared, visible : array_like
        2-D images of the same shape, ``uint8`` (divided by 255) or float in ``[0, 1]``.
        Not modified.
    sigma_s : float, optional
        Spatial σ of the cross bilateral filter in pixels, 1.8 (author's code).
    sigma_r : float, optional
        Range σ in 8-bit grey levels (the code works on 0..255), 25.
    kernel_size : int, optional
        Odd side of the bilateral window, 11.
    cov_window : int, optional
        Odd side of the window whose covariance gives the pixel significance, 5.

    Returns
    -------
    ndarray
        float32, the input shape, on the input's ``[0, 1]`` scale (the code's 0..255 result
        divided by 255, before the code's final ``uint8`` rounding).

    Raises
    ------
    ValueError
        For bad images (see `napari_resfuse.baselines.average`) or bad parameters.

    Notes
    -----
    On grey levels ``x_n = 255 I_n`` (``n = 1`` infrared, ``n = 2`` visible):

    1. ``y_1 = CBF(x_1; guide x_2)``, ``y_2 = CBF(x_2; guide x_1)`` (`cross_bilateral_filter`),
       details ``d_n = x_n − y_n``.
    2. ``w_n(p)`` = sum of the eigenvalues (the trace) of the covariance matrix of the
       ``cov_window``² window of ``d_n`` around ``p`` (rows as observations) plus that of its
       transpose; exact zeros are replaced by machine ε.
    3. ``F = (w_1 x_1 + w_2 x_2) / (w_1 + w_2)``, returned divided by 255.

    All borders reflect without repeating the edge pixel, as the code's ``per_extn_im_fn.m``.
    The eigenvalue sum is computed as the trace (equal up to rounding). Identical inputs are
    returned unchanged. Measured against the author's published outputs on the 21 TNO pairs of
    the seed repository, see the project README.

    References
    ----------
    .. [1] Shreyamsha Kumar, "Image fusion based on pixel significance using cross bilateral
       filter", Signal, Image and Video Processing 9(5):1193–1204 (2015).
       doi:10.1007/s11760-013-0556-9
    .. [2] "An efficient adaptive fusion scheme for multifocus images in wavelet domain using
       statistical properties of neighborhood", Proc. 14th Int. Conf. on Information Fusion
       (2011), the significance rule, as cited in the code (``cbf_ieeeconf2011f.m``).
    """
    ir, vis = _as_unit_pair(infrared, visible)
    size = _check_odd(kernel_size, "kernel_size")
    window = _check_odd(cov_window, "cov_window", minimum=3)
    sigma_s = _check_positive(sigma_s, "sigma_s")
    sigma_r = _check_positive(sigma_r, "sigma_r")
    x1 = ir * 255.0
    x2 = vis * 255.0
    y1, y2 = _cross_bilateral_pair(x1, x2, sigma_s, sigma_r, size)
    eps = np.finfo(np.float64).eps
    w1 = _pixel_significance(x1 - y1, window)
    w2 = _pixel_significance(x2 - y2, window)
    w1[w1 == 0] = eps
    w2[w2 == 0] = eps
    fused = (x1 * w1 + x2 * w2) / (w1 + w2)
    return (fused / 255.0).astype(np.float32)
