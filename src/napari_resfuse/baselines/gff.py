"""Guided filtering fusion (GFF), Li, Kang & Hu (2013), and the guided filter it uses.

The fusion follows the paper and the behaviour of the authors' widely distributed MATLAB code
(``GFF.m``): Laplacian saliency, choose-max initial weights, weights refined by a guided filter
(large radius and ε for the base layers, small for the details) and a 31 × 31 mean filter for the
two-scale decomposition, with replicated borders.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .simple import _as_unit_pair, _box_mean, _check_int, _check_odd, _check_positive

__all__ = ["gff", "guided_filter"]


def _box_sum_truncated(image: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the ``(2r+1)²`` window around each pixel, the window cut at the image border.

    Equals He's ``boxfilter.m`` (zeros outside the image); also defined for images smaller
    than the window.
    """
    size = 2 * radius + 1
    return ndimage.uniform_filter(image, size, mode="constant") * float(size * size)


def guided_filter(guide, source, radius: int, eps: float) -> np.ndarray:
    """Grey-guide guided filter of He, Sun & Tang.

    Parameters
    ----------
    guide : ndarray
        2-D guidance image ``I``.
    source : ndarray
        2-D image ``p`` to filter, the shape of ``guide``.
    radius : int
        Window radius ``r`` (windows are ``(2r+1)²``, truncated at the border).
    eps : float
        Regularisation ``ε`` (in squared units of ``guide``).

    Returns
    -------
    ndarray
        float64, the filtered image ``q``.

    Notes
    -----
    For each window ``ω_k``: ``a_k = cov_ω(I, p) / (var_ω(I) + ε)``, ``b_k = mean_ω(p) − a_k
    mean_ω(I)``; then ``q = mean(a) I + mean(b)``, the means taken over the windows containing
    each pixel (eq. 5, 6, 8 of [1]_). Box sums use running sums, windows are truncated at the
    border and normalised by their pixel count, as in the authors' ``guidedfilter.m``.

    References
    ----------
    .. [1] He, Sun & Tang, "Guided image filtering", ECCV 2010; IEEE Trans. Pattern Anal.
       Mach. Intell. 35(6):1397–1409 (2013).
    """
    guide = np.asarray(guide, dtype=np.float64)
    source = np.asarray(source, dtype=np.float64)
    if guide.ndim != 2 or guide.shape != source.shape:
        raise ValueError(
            f"guide and source must be 2-D with the same shape; got {guide.shape} and "
            f"{source.shape}"
        )
    radius = _check_int(radius, "radius")
    eps = _check_positive(eps, "eps", allow_zero=True)
    count = _box_sum_truncated(np.ones_like(guide), radius)
    mean_i = _box_sum_truncated(guide, radius) / count
    mean_p = _box_sum_truncated(source, radius) / count
    cov_ip = _box_sum_truncated(guide * source, radius) / count - mean_i * mean_p
    var_i = _box_sum_truncated(guide * guide, radius) / count - mean_i * mean_i
    a = cov_ip / (var_i + eps)  # eq. 5 of He et al.
    b = mean_p - a * mean_i  # eq. 6
    mean_a = _box_sum_truncated(a, radius) / count
    mean_b = _box_sum_truncated(b, radius) / count
    return mean_a * guide + mean_b  # eq. 8


def _gaussian_blur(image: np.ndarray, radius: int, sigma: float, mode: str) -> np.ndarray:
    """Gaussian of σ on a ``(2r+1)²`` window, normalised over the window (MATLAB's
    ``fspecial('gaussian', 2r+1, σ)``); ``mode`` as `scipy.ndimage`."""
    return ndimage.gaussian_filter(image, sigma, mode=mode, radius=radius)


_LAPLACIAN = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def _weight_maps(
    ir: np.ndarray,
    vis: np.ndarray,
    base: tuple[int, float],
    detail: tuple[int, float],
    saliency_radius: int,
    saliency_sigma: float,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """GFF weight maps ``([W_1^B, W_2^B], [W_1^D, W_2^D])``, each pair summing to 1.

    ``base`` and ``detail`` are the guided filter's ``(radius, ε)`` for the two layers.
    """
    sources = (ir, vis)
    # Saliency S_n = |I_n * L| * g (eq. 4-5 of Li et al.), replicated borders.
    saliency = [
        _gaussian_blur(
            np.abs(ndimage.correlate(image, _LAPLACIAN, mode="nearest")),
            saliency_radius,
            saliency_sigma,
            mode="nearest",
        )
        for image in sources
    ]
    # Initial weights P_n (eq. 6): 1 where S_n is the largest, ties to the first (infrared).
    ir_wins = saliency[0] >= saliency[1]
    initial = (ir_wins.astype(np.float64), (~ir_wins).astype(np.float64))

    def refined(radius: int, eps: float) -> list[np.ndarray]:
        # W_n = G_{r,eps}(P_n, I_n) (eq. 7), clipped to [0, 1], then normalised to sum to 1.
        weights = [
            np.clip(guided_filter(image, p, radius, eps), 0.0, 1.0) + 1e-12
            for image, p in zip(sources, initial, strict=True)
        ]
        total = weights[0] + weights[1]
        return [w / total for w in weights]

    return refined(*base), refined(*detail)


def gff(
    infrared,
    visible,
    *,
    r1: int = 45,
    eps1: float = 0.3,
    r2: int = 7,
    eps2: float = 1e-6,
    kernel_size: int = 31,
    saliency_radius: int = 5,
    saliency_sigma: float = 5.0,
) -> np.ndarray:
    """Fuse by guided filtering (GFF), Li, Kang & Hu (2013).

    Parameters
    ----------
    infrared, visible : array_like
        2-D images of the same shape, ``uint8`` (divided by 255) or float in ``[0, 1]``.
        Not modified.
    r1, eps1 : int, float, optional
        Guided-filter radius and ε for the base-layer weights; the paper's 45 and 0.3.
    r2, eps2 : int, float, optional
        Guided-filter radius and ε for the detail-layer weights; the paper's 7 and 1e-6.
    kernel_size : int, optional
        Side of the mean filter of the two-scale decomposition, 31.
    saliency_radius, saliency_sigma : int, float, optional
        The Gaussian low-pass of the saliency, ``(2·5+1)² = 11 × 11`` with σ = 5.

    Returns
    -------
    ndarray
        float32, the input shape, unclipped.

    Raises
    ------
    ValueError
        For bad images (see `napari_resfuse.baselines.average`) or bad parameters.

    Notes
    -----
    With ``n = 1`` the infrared and ``n = 2`` the visible image (values in ``[0, 1]``):

    1. Two-scale decomposition: ``B_n = I_n * Z`` (31 × 31 mean, replicated border),
       ``D_n = I_n − B_n``.
    2. Saliency: ``S_n = |I_n * L| * g``, ``L`` the 3 × 3 Laplacian ``[[0,1,0],[1,−4,1],[0,1,0]]``
       and ``g`` the 11 × 11 Gaussian with σ = 5 (both replicated border).
    3. Initial weights: ``P_n = 1`` where ``S_n`` is the largest (ties go to the infrared image,
       as ``max`` in the authors' code), else 0.
    4. ``W_n^B = G_{r1,ε1}(P_n, I_n)``, ``W_n^D = G_{r2,ε2}(P_n, I_n)`` (`guided_filter` with the
       source as guide), clipped to ``[0, 1]``, plus ``1e-12``, and normalised to sum to 1.
    5. ``F = Σ_n W_n^B B_n + Σ_n W_n^D D_n``.

    Deviation from the authors' code: it rounds the weight maps to 8 bits (``uint8(W·255)``)
    while clipping them; here they are only clipped. Since the two unclipped weights sum to 1
    (the guided filter is linear in ``p``), this changes a weight by at most 1/510. The code's
    final ``uint8(F·255)`` is left to the caller. Identical inputs are returned unchanged.

    References
    ----------
    .. [1] Li, Kang & Hu, "Image fusion with guided filtering", IEEE Trans. Image Process.
       22(7):2864–2875 (2013). doi:10.1109/TIP.2013.2244222
    .. [2] He, Sun & Tang, "Guided image filtering", IEEE Trans. Pattern Anal. Mach. Intell.
       35(6):1397–1409 (2013).
    """
    ir, vis = _as_unit_pair(infrared, visible)
    size = _check_odd(kernel_size, "kernel_size", minimum=1)
    r1 = _check_int(r1, "r1")
    r2 = _check_int(r2, "r2")
    saliency_radius = _check_int(saliency_radius, "saliency_radius")
    eps1 = _check_positive(eps1, "eps1", allow_zero=True)
    eps2 = _check_positive(eps2, "eps2", allow_zero=True)
    sigma = _check_positive(saliency_sigma, "saliency_sigma")
    sources = (ir, vis)
    weights_base, weights_detail = _weight_maps(
        ir, vis, (r1, eps1), (r2, eps2), saliency_radius, sigma
    )

    # Two-scale decomposition (eq. 1-2) and reconstruction (eq. 8-10).
    fused = np.zeros_like(ir)
    for image, w_b, w_d in zip(sources, weights_base, weights_detail, strict=True):
        base = _box_mean(image, size, "edge")
        fused += w_b * base + w_d * (image - base)
    return fused.astype(np.float32)
