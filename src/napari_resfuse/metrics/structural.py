"""Structural fusion metrics: the paper's SSIM sum and Aslantas & Bendes' SCD.

Both follow the analysis code behind the paper's Table 1 (Li & Wu's DenseFuse analysis code, as
shipped in ``diylife/imagefusion_deeplearning``, ``analysis_methods/analysis_MatLab/``):
``analysis_Reference.m`` calls MATLAB's ``ssim`` for SSIM and ``analysis_SCD.m`` for SCD.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from ._validate import unit_triple

__all__ = ["scd", "ssim_sum"]

# MATLAB ssim defaults: 'Radius' 1.5 -> an 11 x 11 Gaussian (2 * ceil(3 * 1.5) + 1), dynamic
# range 1 for double images, K = [0.01 0.03], exponents [1 1 1].
_SSIM_SIGMA = 1.5
_SSIM_RADIUS = int(np.ceil(3 * _SSIM_SIGMA))  # 5 -> 11 taps
_SSIM_C1 = (0.01 * 1.0) ** 2
_SSIM_C2 = (0.03 * 1.0) ** 2

# Below this spread a difference image counts as constant: the [0, 1] inputs make floating-point
# noise of a mathematically constant difference about 1e-16.
_SCD_CONSTANT_TOL = 1e-12


def _gaussian(image: np.ndarray) -> np.ndarray:
    """``fspecial('gaussian', 11, 1.5)``, replicated borders (``imfilter(..., 'replicate')``)."""
    return gaussian_filter(image, _SSIM_SIGMA, mode="nearest", radius=_SSIM_RADIUS)


def _matlab_ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """Mean SSIM of two ``[0, 1]`` images with MATLAB ``ssim``'s defaults (full map, no crop).

    Written out rather than ``skimage.metrics.structural_similarity``: that one crops the
    borders and uses other defaults, so it does not give the published values.
    """
    mu_x = _gaussian(image)
    mu_y = _gaussian(reference)
    mu_x2 = mu_x * mu_x
    mu_y2 = mu_y * mu_y
    mu_xy = mu_x * mu_y
    sigma_x2 = _gaussian(image * image) - mu_x2
    sigma_y2 = _gaussian(reference * reference) - mu_y2
    sigma_xy = _gaussian(image * reference) - mu_xy
    numerator = (2 * mu_xy + _SSIM_C1) * (2 * sigma_xy + _SSIM_C2)
    denominator = (mu_x2 + mu_y2 + _SSIM_C1) * (sigma_x2 + sigma_y2 + _SSIM_C2)
    return float(np.mean(numerator / denominator))


def ssim_sum(infrared, visible, fused) -> float:
    r"""The paper's "SSIM": SSIM(F, IR) + SSIM(F, VIS), each computed as MATLAB's ``ssim``.

    Higher is better; the value lies in ``[-2, 2]`` (2 when the fused image equals both sources).

    Parameters
    ----------
    infrared, visible : array_like
        The two source images, 2-D and of the same shape. ``uint8`` is divided by 255 (MATLAB
        ``im2double``), ``uint16`` by 65535, floats must lie in ``[0, 1]``.
    fused : array_like
        The fused image F, same shape as the sources.

    Returns
    -------
    float
        ``SSIM(F, IR) + SSIM(F, VIS)``.

    Raises
    ------
    ValueError
        If an image is not 2-D, is empty or holds NaN/inf, or if the shapes differ.

    Notes
    -----
    Each term is MATLAB's ``ssim(F, X)`` with its defaults:

    .. math::

        \mathrm{SSIM}(F, X) = \operatorname{mean}_{i,j}
        \frac{(2\mu_F\mu_X + C_1)(2\sigma_{FX} + C_2)}
             {(\mu_F^2 + \mu_X^2 + C_1)(\sigma_F^2 + \sigma_X^2 + C_2)},

    where the local means and (co)variances come from an 11 x 11 Gaussian window with
    :math:`\sigma = 1.5` (normalised to sum 1) applied with replicated borders,
    :math:`\sigma_{FX} = \overline{FX} - \mu_F\mu_X`, :math:`C_1 = (0.01 L)^2`,
    :math:`C_2 = (0.03 L)^2` and dynamic range :math:`L = 1`. The mean is over the full map:
    unlike scikit-image's ``structural_similarity`` nothing is cropped at the borders.

    ``analysis_Reference.m`` stores :math:`(\mathrm{SSIM}(F, IR) + \mathrm{SSIM}(F, VIS)) / 2`
    (the SSIM column of its ``results.txt``); the paper's Table 1 reports twice that value, the
    sum returned here (e.g. 1.2476 for TNO pair 1 fused by CBF, where ``results.txt`` has 0.6238).

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment:
       from error visibility to structural similarity", IEEE Transactions on Image Processing,
       13(4), 600-612, 2004.
    .. [2] MATLAB Image Processing Toolbox, ``ssim`` (default 'Radius' 1.5, 'DynamicRange' 1
       for double images).
    .. [3] H. Li and X.-J. Wu, DenseFuse analysis code, ``analysis_Reference.m``, as used in
       github.com/diylife/imagefusion_deeplearning (``analysis_methods/analysis_MatLab``).
    """
    return _ssim_sum_core(*unit_triple(infrared, visible, fused))


def _ssim_sum_core(ir: np.ndarray, vis: np.ndarray, fus: np.ndarray) -> float:
    return _matlab_ssim(fus, ir) + _matlab_ssim(fus, vis)


def _corr2(first: np.ndarray, second: np.ndarray, first_name: str, second_name: str) -> float:
    """MATLAB ``corr2``: Pearson correlation of all pixels; ValueError where it is 0/0."""
    first_centred = first - first.mean()
    second_centred = second - second.mean()
    for centred, name in ((first_centred, first_name), (second_centred, second_name)):
        if np.max(np.abs(centred)) <= _SCD_CONSTANT_TOL:
            raise ValueError(
                f"scd is undefined: {name} is constant, so its correlation is 0/0 "
                "(MATLAB's corr2 returns NaN)"
            )
    return float(np.corrcoef(first.ravel(), second.ravel())[0, 1])


def scd(infrared, visible, fused) -> float:
    r"""Sum of the correlations of differences (SCD) of Aslantas & Bendes.

    Higher is better; the value lies in ``[-2, 2]``.

    Parameters
    ----------
    infrared, visible : array_like
        The two source images A (infrared) and B (visible), 2-D and of the same shape. ``uint8``
        is divided by 255 (MATLAB ``im2double``), ``uint16`` by 65535; floats must lie in
        ``[0, 1]``.
    fused : array_like
        The fused image F, same shape as the sources.

    Returns
    -------
    float
        ``corr(F - B, A) + corr(F - A, B)``.

    Raises
    ------
    ValueError
        If an image is not 2-D, is empty or holds NaN/inf, if the shapes differ, or if a
        correlation is 0/0 because ``infrared``, ``visible``, ``fused - visible`` or
        ``fused - infrared`` is constant (spread at most 1e-12; MATLAB would return NaN). This
        includes a fused image equal to one of the sources, and 1-pixel images.

    Notes
    -----
    A port of ``analysis_SCD.m`` (Emre Bendes, 2015): the difference F - B is the information
    that comes from A, and vice versa,

    .. math::

        \mathrm{SCD} = r(F - B, A) + r(F - A, B),\qquad
        r(X, Y) = \frac{\sum_{i,j} (X - \bar X)(Y - \bar Y)}
                       {\sqrt{\sum_{i,j} (X - \bar X)^2 \sum_{i,j} (Y - \bar Y)^2}},

    with :math:`r` MATLAB's ``corr2`` over all pixels of the ``[0, 1]`` images. Swapping the
    two sources leaves SCD unchanged.

    References
    ----------
    .. [1] V. Aslantas and E. Bendes, "A new image quality metric for image fusion: the sum of
       the correlations of differences", AEU - International Journal of Electronics and
       Communications, 69(12), 1890-1896, 2015.
    .. [2] H. Li and X.-J. Wu, DenseFuse analysis code, ``analysis_SCD.m``, as used in
       github.com/diylife/imagefusion_deeplearning (``analysis_methods/analysis_MatLab``).
    """
    return _scd_core(*unit_triple(infrared, visible, fused))


def _scd_core(image_a: np.ndarray, image_b: np.ndarray, image_f: np.ndarray) -> float:
    return _corr2(image_f - image_b, image_a, "fused - visible", "infrared") + _corr2(
        image_f - image_a, image_b, "fused - infrared", "visible"
    )
