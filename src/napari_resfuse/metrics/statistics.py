"""Image statistics and reference-based fusion metrics: SD, SF, AG, PSNR, CC and VIF.

``std``, ``spatial_frequency``, ``average_gradient`` and ``psnr`` port the definitions of the VIFB
benchmark (Zhang, Ye & Xiao 2020, github ``xingchenzhang/VIFB``, ``metrics/metricsVariance.m``,
``metricsSpatial_frequency.m``, ``metricsAvg_gradient.m``, ``metricsPsnr.m``), which its
``compute_metrics.m`` runs on ``double(imread(...))``, i.e. on grey levels 0–255. VIFB has no CC and
no VIF; ``cc`` and ``vif`` follow the definitions the infrared–visible fusion literature reports
(the mean of two Pearson correlations, and the sum of two multi-scale pixel-domain VIFs of Sheikh &
Bovik), also on grey levels 0–255.

Every function takes ``(infrared, visible, fused)``; images are converted as every metric input
(see :func:`napari_resfuse.metrics.compute_metrics`) and then multiplied by 255, so that 8-bit
inputs are measured exactly as the reference code measures them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ._validate import unit_triple

__all__ = ["average_gradient", "cc", "psnr", "spatial_frequency", "std", "vif"]

# VIFB's PSNR peak: 2^B - 1 with B = 8 bits.
_PEAK = 255.0
# Sheikh & Bovik's pixel-domain VIF: variance of the visual (HVS) noise, on grey levels 0-255.
_VIF_SIGMA_NSQ = 2.0
# Their small constant: variances below it count as zero, and it keeps divisions finite.
_VIF_EPS = 1e-10
# Window sizes of the four scales, N = 2^(4 - scale + 1) + 1, each a Gaussian of sigma N / 5.
_VIF_WINDOWS = (17, 9, 5, 3)


def _grey_levels(*images: np.ndarray) -> tuple[np.ndarray, ...]:
    """Validated ``[0, 1]`` images as float64 grey levels in ``[0, 255]``."""
    return tuple(image * _PEAK for image in images)


# --------------------------------------------------------------------------------------------------
# Single-image statistics of the fused image (VIFB)
# --------------------------------------------------------------------------------------------------


def std(infrared, visible, fused) -> float:
    r"""Standard deviation (SD) of the fused image, in grey levels.

    Parameters
    ----------
    infrared, visible, fused : array_like
        The source images and the fused image, 2-D (or RGB, converted to luminance), all of one
        shape. Only ``fused`` enters the value; the sources are validated all the same.

    Returns
    -------
    float
        The population standard deviation of the fused image on the 0–255 scale; higher is better
        (more contrast).

    Notes
    -----
    Port of VIFB's ``metricsVariance.m`` (despite its name it returns the standard deviation):

    .. math:: \mathrm{SD} = \sqrt{\frac{1}{MN} \sum_{i,j} (F_{ij} - \mu_F)^2}

    with :math:`F` the fused image in grey levels 0–255 (MATLAB's ``double`` of the 8-bit image),
    :math:`\mu_F` its mean and the divisor :math:`MN` (not :math:`MN - 1`).

    References
    ----------
    .. [1] X. Zhang, P. Ye, G. Xiao, "VIFB: A Visible and Infrared Image Fusion Benchmark",
       CVPR Workshops, 2020. Code: github.com/xingchenzhang/VIFB, ``metrics/metricsVariance.m``.
    .. [2] Y.-J. Rao, "In-fibre Bragg grating sensors", Measurement Science and Technology 8(4),
       1997 (the reference VIFB gives for the metric).
    """
    return _std_core(*unit_triple(infrared, visible, fused))


def _std_core(ir: np.ndarray, vis: np.ndarray, fus: np.ndarray) -> float:
    return float(np.std(fus * _PEAK))


def spatial_frequency(infrared, visible, fused) -> float:
    r"""Spatial frequency (SF) of the fused image, in grey levels.

    Parameters
    ----------
    infrared, visible, fused : array_like
        The source images and the fused image, 2-D (or RGB, converted to luminance), all of one
        shape. Only ``fused`` enters the value.

    Returns
    -------
    float
        ``sqrt(RF^2 + CF^2)`` on the 0–255 scale; higher is better (more detail). A single pixel
        gives 0.

    Notes
    -----
    Port of VIFB's ``metricsSpatial_frequency.m``:

    .. math::

        \mathrm{RF}^2 = \frac{1}{MN} \sum_{i=1}^{M} \sum_{j=2}^{N} (F_{i,j} - F_{i,j-1})^2,
        \quad
        \mathrm{CF}^2 = \frac{1}{MN} \sum_{j=1}^{N} \sum_{i=2}^{M} (F_{i,j} - F_{i-1,j})^2,
        \quad
        \mathrm{SF} = \sqrt{\mathrm{RF}^2 + \mathrm{CF}^2}

    Both sums are divided by the pixel count :math:`MN`, not by the number of differences
    (:math:`M(N-1)` and :math:`(M-1)N`), as in the reference code; there is no border padding.

    References
    ----------
    .. [1] A. M. Eskicioglu, P. S. Fisher, "Image quality measures and their performance",
       IEEE Transactions on Communications 43(12), 1995.
    .. [2] VIFB, github.com/xingchenzhang/VIFB, ``metrics/metricsSpatial_frequency.m``.
    """
    return _spatial_frequency_core(*unit_triple(infrared, visible, fused))


def _spatial_frequency_core(ir: np.ndarray, vis: np.ndarray, fus: np.ndarray) -> float:
    f = fus * _PEAK
    row_diff = np.diff(f, axis=1)  # F(i, j) - F(i, j-1)
    col_diff = np.diff(f, axis=0)  # F(i, j) - F(i-1, j)
    rf2 = np.sum(row_diff * row_diff) / f.size
    cf2 = np.sum(col_diff * col_diff) / f.size
    return float(np.sqrt(rf2 + cf2))


def average_gradient(infrared, visible, fused) -> float:
    r"""Average gradient (AG) of the fused image, in grey levels per pixel.

    Parameters
    ----------
    infrared, visible, fused : array_like
        The source images and the fused image, 2-D (or RGB, converted to luminance), all of one
        shape, at least 2 × 2. Only ``fused`` enters the value.

    Returns
    -------
    float
        The average gradient on the 0–255 scale; higher is better (sharper).

    Raises
    ------
    ValueError
        If the images have fewer than 2 rows or 2 columns (the divisor below is then 0).

    Notes
    -----
    Port of VIFB's ``metricsAvg_gradient.m``:

    .. math::

        \mathrm{AG} = \frac{1}{(M-1)(N-1)} \sum_{i=1}^{M} \sum_{j=1}^{N}
        \sqrt{\frac{G_x(i,j)^2 + G_y(i,j)^2}{2}}

    where :math:`G_x, G_y` are MATLAB's ``gradient`` of the fused image: central differences
    :math:`(F_{j+1} - F_{j-1}) / 2` inside, one-sided differences on the first and last row and
    column (the same as :func:`numpy.gradient`). The sum runs over all :math:`MN` pixels but is
    divided by :math:`(M-1)(N-1)`, as in the reference code.

    References
    ----------
    .. [1] G. Cui, H. Feng, Z. Xu, Q. Li, Y. Chen, "Detail preserved fusion of visible and
       infrared images using regional saliency extraction and multi-scale image decomposition",
       Optics Communications 341, 2015.
    .. [2] VIFB, github.com/xingchenzhang/VIFB, ``metrics/metricsAvg_gradient.m``.
    """
    return _average_gradient_core(*unit_triple(infrared, visible, fused))


def _average_gradient_core(ir: np.ndarray, vis: np.ndarray, fus: np.ndarray) -> float:
    if min(fus.shape) < 2:
        raise ValueError(
            f"average_gradient needs images of at least 2 x 2 pixels, got shape {fus.shape}"
        )
    f = fus * _PEAK
    gy, gx = np.gradient(f)  # d/d(row), d/d(column); central inside, one-sided at the borders
    rows, cols = f.shape
    return float(np.sum(np.sqrt((gx * gx + gy * gy) / 2.0)) / ((rows - 1) * (cols - 1)))


# --------------------------------------------------------------------------------------------------
# Metrics that compare the fused image with each source
# --------------------------------------------------------------------------------------------------


def psnr(infrared, visible, fused) -> float:
    r"""Peak signal-to-noise ratio (PSNR) of the fused image against both sources, VIFB's variant.

    Parameters
    ----------
    infrared, visible, fused : array_like
        The source images and the fused image, 2-D (or RGB, converted to luminance), all of one
        shape.

    Returns
    -------
    float
        PSNR in dB; higher is better. ``inf`` when the fused image equals both sources exactly
        (MATLAB's ``20*log10(255/0)``, as in the reference code).

    Notes
    -----
    Port of VIFB's ``metricsPsnr.m``, with grey levels 0–255 and peak :math:`2^8 - 1 = 255`:

    .. math::

        e(X, F) = \frac{\sqrt{\sum_{i,j} (X_{ij} - F_{ij})^2}}{MN}, \quad
        \mathrm{PSNR} = 20 \log_{10} \frac{255}{\sqrt{(e(I, F) + e(V, F)) / 2}}

    Quirk of the reference code: its ``mse`` helper returns the root of the summed squared error
    divided by the pixel count, :math:`e = \sqrt{\mathrm{MSE} / (MN)}`, not the mean squared
    error, and the two sources' :math:`e` are averaged before the logarithm. For one source this
    gives :math:`20 \log_{10} 255 - 5 \log_{10} \mathrm{MSE} + 5 \log_{10}(MN)` instead of the
    textbook :math:`20 \log_{10} 255 - 10 \log_{10} \mathrm{MSE}`: typically some 40 dB more on
    images of a few hundred pixels a side (VIFB publishes values near 58–60 dB). We reproduce VIFB
    so that its published numbers can be compared.

    References
    ----------
    .. [1] P. Jagalingam, A. V. Hegde, "A review of quality metrics for fused image",
       Aquatic Procedia 4, 2015.
    .. [2] VIFB, github.com/xingchenzhang/VIFB, ``metrics/metricsPsnr.m``.
    """
    return _psnr_core(*unit_triple(infrared, visible, fused))


def _vifb_error(x: np.ndarray, f: np.ndarray) -> float:
    """VIFB's ``mse(a, b)``: sqrt(sum((a - b)^2)) / (M N)."""
    d = x - f
    return float(np.sqrt(np.sum(d * d)) / f.size)


def _psnr_core(ir: np.ndarray, vis: np.ndarray, fus: np.ndarray) -> float:
    i, v, f = _grey_levels(ir, vis, fus)
    mes = (_vifb_error(i, f) + _vifb_error(v, f)) / 2.0
    if mes == 0.0:
        return math.inf
    return float(20.0 * np.log10(_PEAK / np.sqrt(mes)))


def cc(infrared, visible, fused) -> float:
    r"""Correlation coefficient (CC): mean Pearson correlation of the fused image with each source.

    Parameters
    ----------
    infrared, visible, fused : array_like
        The source images and the fused image, 2-D (or RGB, converted to luminance), all of one
        shape.

    Returns
    -------
    float
        :math:`(r(I, F) + r(V, F)) / 2` in ``[-1, 1]``; higher is better. It is 1 when the fused
        image is an increasing affine function of both sources.

    Raises
    ------
    ValueError
        If one of the images is constant: the correlation is then 0 / 0, undefined (MATLAB's
        ``corr2`` would return NaN).

    Notes
    -----
    .. math::

        r(X, F) = \frac{\sum (X - \bar X)(F - \bar F)}
                       {\sqrt{\sum (X - \bar X)^2 \, \sum (F - \bar F)^2}}, \quad
        \mathrm{CC} = \frac{r(I, F) + r(V, F)}{2}

    VIFB has no CC; this is the definition used by the infrared-visible fusion literature (e.g.
    the evaluation code of Tang et al., SeAFusion 2022, and Ma et al.'s survey). It is invariant
    to the grey-level scale and offset.

    References
    ----------
    .. [1] J. Ma, Y. Ma, C. Li, "Infrared and visible image fusion methods and applications: a
       survey", Information Fusion 45, 2019.
    .. [2] L. Tang, J. Yuan, J. Ma, "Image fusion in the loop of high-level vision tasks: a
       semantic-aware real-time infrared and visible image fusion network", Information Fusion
       82, 2022 (evaluation code: github.com/Linfeng-Tang/Evaluation-for-Image-Fusion).
    """
    return _cc_core(*unit_triple(infrared, visible, fused))


def _cc_core(ir: np.ndarray, vis: np.ndarray, fus: np.ndarray) -> float:
    for name, x in (("fused", fus), ("infrared", ir), ("visible", vis)):
        if np.all(x == x.flat[0]):
            raise ValueError(f"cc is undefined when {name} is constant (zero variance)")
    r = np.corrcoef(np.stack([ir.ravel(), vis.ravel(), fus.ravel()]))
    return float((r[0, 2] + r[1, 2]) / 2.0)


def vif(infrared, visible, fused) -> float:
    r"""Visual information fidelity (VIF) of the fused image: VIFp(I, F) + VIFp(V, F).

    Parameters
    ----------
    infrared, visible, fused : array_like
        The source images and the fused image, 2-D (or RGB, converted to luminance), all of one
        shape, at least 17 × 17 pixels (the first scale's window).

    Returns
    -------
    float
        The sum of the two pixel-domain VIFs; higher is better. Each term is 1 for a fused image
        identical to that source, so a perfect copy of one source and the other gives 2.

    Raises
    ------
    ValueError
        If the images are smaller than 17 × 17, or a source has no local variance at any scale
        (a constant image): VIF is then 0 / 0, undefined.

    Notes
    -----
    Each term is Sheikh & Bovik's multi-scale pixel-domain VIF (LIVE's ``vifp_mscale.m``), with
    the source as reference :math:`R` and the fused image as distorted :math:`D`, on grey levels
    0–255. For scales :math:`s = 1..4` with a Gaussian window of size
    :math:`N = 2^{5-s} + 1` (17, 9, 5, 3) and :math:`\sigma = N/5` (MATLAB's ``fspecial``): from
    scale 2 on, both images are first low-passed with that window ('valid', no padding) and
    subsampled by 2 (every other row and column, starting with the first). Then, with local
    means, variances and covariance over 'valid' windows,

    .. math::

        g = \frac{\sigma_{RD}}{\sigma_R^2 + 10^{-10}}, \quad
        \sigma_V^2 = \sigma_D^2 - g \sigma_{RD},

    corrected as the reference code does (negative variances → 0; where
    :math:`\sigma_R^2 < 10^{-10}`: :math:`g = 0`, :math:`\sigma_V^2 = \sigma_D^2`,
    :math:`\sigma_R^2 = 0`; where :math:`\sigma_D^2 < 10^{-10}`: :math:`g = 0`,
    :math:`\sigma_V^2 = 0`; where :math:`g < 0`: :math:`\sigma_V^2 = \sigma_D^2`, :math:`g = 0`;
    finally :math:`\sigma_V^2 \ge 10^{-10}`), and with the HVS noise variance
    :math:`\sigma_N^2 = 2`,

    .. math::

        \mathrm{VIFp}(R, D) = \frac{\sum_s \sum \log_{10}\left(1 +
            \frac{g^2 \sigma_R^2}{\sigma_V^2 + \sigma_N^2}\right)}
            {\sum_s \sum \log_{10}\left(1 + \frac{\sigma_R^2}{\sigma_N^2}\right)}.

    VIFB has no VIF. The fusion score is the sum :math:`\mathrm{VIFp}(I, F) + \mathrm{VIFp}(V, F)`,
    as in the fusion literature's evaluation code (e.g. Tang et al. 2022). Because
    :math:`\sigma_N^2` is in grey levels, the value depends on the 0–255 scale.

    References
    ----------
    .. [1] H. R. Sheikh, A. C. Bovik, "Image information and visual quality", IEEE Transactions on
       Image Processing 15(2), 2006 (pixel-domain implementation ``vifp_mscale.m``, LIVE, UT
       Austin).
    .. [2] Y. Han, Y. Cai, Y. Cao, X. Xu, "A new image fusion performance metric based on visual
       information fidelity", Information Fusion 14(2), 2013.
    .. [3] L. Tang, J. Yuan, J. Ma, SeAFusion, Information Fusion 82, 2022 (evaluation code:
       github.com/Linfeng-Tang/Evaluation-for-Image-Fusion).
    """
    return _vif_core(*unit_triple(infrared, visible, fused))


def _vif_core(ir: np.ndarray, vis: np.ndarray, fus: np.ndarray) -> float:
    i, v, f = _grey_levels(ir, vis, fus)
    if min(f.shape) < _VIF_WINDOWS[0]:
        raise ValueError(
            f"vif needs images of at least {_VIF_WINDOWS[0]} x {_VIF_WINDOWS[0]} pixels, "
            f"got shape {f.shape}"
        )
    total = 0.0
    for name, reference in (("infrared", i), ("visible", v)):
        num, den = _vifp_terms(reference, f)
        if den == 0.0:
            raise ValueError(
                f"vif is undefined when {name} is constant (no local variance at any scale)"
            )
        total += num / den
    return total


def _filter_valid(image: np.ndarray, size: int) -> np.ndarray:
    """MATLAB's ``filter2(fspecial('gaussian', size, size / 5), image, 'valid')``.

    ``fspecial`` builds the normalised ``exp(-(x^2 + y^2) / (2 sigma^2))`` on ``size x size``
    taps (values below ``eps * max`` zeroed: none for these sizes), which is separable, so a
    Gaussian filter of radius ``size // 2`` cropped to the 'valid' part gives the same values.
    """
    r = size // 2
    out_shape = (image.shape[0] - size + 1, image.shape[1] - size + 1)
    if min(out_shape) <= 0:
        return np.zeros((max(out_shape[0], 0), max(out_shape[1], 0)))
    out = ndimage.gaussian_filter(image, size / 5.0, mode="constant", radius=r)
    return out[r : r + out_shape[0], r : r + out_shape[1]]


def _vifp_terms(reference: np.ndarray, distorted: np.ndarray) -> tuple[float, float]:
    """Numerator and denominator of the multi-scale pixel-domain VIF (grey levels 0-255)."""
    ref, dist = reference, distorted
    num = 0.0
    den = 0.0
    for scale, n in enumerate(_VIF_WINDOWS, start=1):
        win = n
        if scale > 1:
            ref = _filter_valid(ref, win)[::2, ::2]
            dist = _filter_valid(dist, win)[::2, ::2]
        mu1 = _filter_valid(ref, win)
        if mu1.size == 0:  # the image got smaller than the window: this and later scales empty
            break
        mu2 = _filter_valid(dist, win)
        sigma1_sq = _filter_valid(ref * ref, win) - mu1 * mu1
        sigma2_sq = _filter_valid(dist * dist, win) - mu2 * mu2
        sigma12 = _filter_valid(ref * dist, win) - mu1 * mu2
        np.maximum(sigma1_sq, 0.0, out=sigma1_sq)
        np.maximum(sigma2_sq, 0.0, out=sigma2_sq)

        g = sigma12 / (sigma1_sq + _VIF_EPS)
        sv_sq = sigma2_sq - g * sigma12
        # The reference code's corrections, in its order.
        flat_ref = sigma1_sq < _VIF_EPS
        g[flat_ref] = 0.0
        sv_sq[flat_ref] = sigma2_sq[flat_ref]
        sigma1_sq[flat_ref] = 0.0
        flat_dist = sigma2_sq < _VIF_EPS
        g[flat_dist] = 0.0
        sv_sq[flat_dist] = 0.0
        negative = g < 0.0
        sv_sq[negative] = sigma2_sq[negative]
        g[negative] = 0.0
        np.maximum(sv_sq, _VIF_EPS, out=sv_sq)

        num += float(np.sum(np.log10(1.0 + g * g * sigma1_sq / (sv_sq + _VIF_SIGMA_NSQ))))
        den += float(np.sum(np.log10(1.0 + sigma1_sq / _VIF_SIGMA_NSQ)))
    return num, den
