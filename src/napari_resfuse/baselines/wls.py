"""Visual-saliency and weighted-least-squares fusion (WLS), Ma, Zhou, Wang & Zong (2017).

A port of the behaviour of the authors' MATLAB release (``Script.m``, ``WLS_Fusion.m``,
``RollingGuidanceFilter_Guided.m``, ``guidedfilter.m``, ``boxfilter.m``, ``gaussFilter.m``,
``Visual_Weight_Map.m``, ``Solve_Optimal.m``), which the seed authors used for their WLS column:

- a multi-scale decomposition with rolling guidance filters (RGF, three levels, σ_s = 2, 4, 8,
  σ_r = 0.05, four iterations each, the guided filter as the joint filter) and a final Gaussian;
- the base layers mixed by visual saliency maps (histogram contrast);
- the finest detail level by choose-max-absolute; the others by a smoothed choose-max map refined
  with the "weighted least squares" step, which in the code has no smoothness term and so is a
  per-pixel closed form.

The code reads the visible image as ``I1`` and the infrared as ``I2``; here the arguments are
``(infrared, visible)`` as for every baseline and are handed to the method in the code's order.
"""

from __future__ import annotations

import numpy as np

from .gff import _gaussian_blur, guided_filter
from .simple import _as_unit_pair, _box_mean, _check_int, _check_odd, _check_positive

__all__ = ["wls"]


def _gauss_filter(image: np.ndarray, sigma: float) -> np.ndarray:
    """``gaussFilter.m``: Gaussian of σ on a ``2·round(3σ)+1`` window, replicated border.

    The code sizes the window as ``double(uint8(3σ)·2 + 1)``; uint8 arithmetic saturates at 255,
    so the radius is capped at 127.
    """
    radius = min(int(np.floor(3.0 * sigma + 0.5)), 127)
    return _gaussian_blur(image, radius, sigma, mode="nearest")


def _rolling_guidance(image: np.ndarray, sigma_s: float, sigma_r: float, iterations: int):
    """``RollingGuidanceFilter_Guided.m``: Gaussian start, then guided-filter iterations.

    ``J_0 = G_σs * I``; ``J_{t+1} = GF(guide = J_t, input = I, r = σ_s, ε = σ_r²)``.
    """
    radius = int(np.floor(sigma_s + 0.5))
    result = _gauss_filter(image, sigma_s)
    for _ in range(iterations):
        result = guided_filter(result, image, radius, sigma_r**2)
    return result


def _decompose(image: np.ndarray, levels: int, sigma_s: float, sigma_r: float, iterations: int):
    """Multi-scale layers ``L_1..L_levels`` (details, finest first) and ``L_{levels+1}`` (base)."""
    smoothed = [image]
    sigma = sigma_s
    for _ in range(levels - 1):
        smoothed.append(_rolling_guidance(smoothed[-1], sigma, sigma_r, iterations))
        sigma *= 2.0
    smoothed.append(_gauss_filter(smoothed[-1], sigma_s))  # σ back to its first value
    details = [smoothed[i] - smoothed[i + 1] for i in range(levels)]
    return details, smoothed[-1]


def _visual_saliency(image: np.ndarray) -> np.ndarray:
    """``Visual_Weight_Map.m``: histogram contrast of the 8-bit image, scaled to ``[0, 1]``.

    ``V(p) = Σ_j h(j) |g(p) − j|`` with ``g = uint8(255 I)`` and ``h`` its histogram, then
    ``(V − min V) / (max V − min V)`` (``mat2gray``; 0 for a constant map).
    """
    grey = np.clip(np.floor(255.0 * image + 0.5), 0, 255).astype(np.intp)  # MATLAB uint8()
    counts = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    table = np.abs(levels[:, None] - levels[None, :]) @ counts  # table[g] = Σ_j h(j)|g − j|
    saliency = table[grey]
    low, high = saliency.min(), saliency.max()
    if high == low:
        return np.zeros_like(saliency)
    return (saliency - low) / (high - low)


def wls(
    infrared,
    visible,
    *,
    levels: int = 4,
    sigma_s: float = 2.0,
    sigma_r: float = 0.05,
    iterations: int = 4,
    sigma_map: float = 2.0,
    lam: float = 0.01,
    wls_window: int = 7,
) -> np.ndarray:
    """Fuse by visual saliency and weighted least squares (WLS), Ma et al. (2017).

    Parameters
    ----------
    infrared, visible : array_like
        2-D images of the same shape, ``uint8`` (divided by 255, the code's ``im2double``) or
        float in ``[0, 1]``. Not modified.
    levels : int, optional
        Number of detail levels, 4 (three rolling-guidance levels and one Gaussian level).
    sigma_s : float, optional
        Spatial σ of the first RGF level (doubled at each further level; its rounded value is the
        guided-filter radius) and of the last Gaussian level, 2.
    sigma_r : float, optional
        Range σ of the RGF (the guided filter's ε is its square), 0.05.
    iterations : int, optional
        Rolling-guidance iterations per level, 4.
    sigma_map : float, optional
        σ of the Gaussian (window ``2·floor(3σ)+1``, symmetric border) that smooths the binary
        choose-max maps of levels 2..``levels``, 2.
    lam : float, optional
        λ of the WLS step, 0.01.
    wls_window : int, optional
        Odd side of the mean filter (replicated border) on the infrared detail in the WLS
        weights, 7.

    Returns
    -------
    ndarray
        float32, the input shape, unclipped (the code's ``imwrite`` clips to ``[0, 1]``).

    Raises
    ------
    ValueError
        For bad images (see `napari_resfuse.baselines.average`) or bad parameters.

    Notes
    -----
    With ``I_1`` the visible and ``I_2`` the infrared image (the code's order):

    1. Decomposition: ``G^0 = I``; ``G^j = RGF_{σ_j}(G^{j−1})``, ``σ_j = 2^j σ_s / 2`` for
       ``j = 1..levels−1``; ``G^levels = Gauss_{σ_s}(G^{levels−1})``; details
       ``L^j = G^{j−1} − G^j`` and base ``L^{levels+1} = G^levels``.
    2. Base: ``B = (0.5 + 0.5(V_1 − V_2)) L_1^b + (0.5 + 0.5(V_2 − V_1)) L_2^b``, ``V_k`` the
       visual saliency maps of the sources.
    3. Finest level: ``D^1 = L_2^1`` where ``|L_1^1| < |L_2^1|``, else ``L_1^1``.
    4. Levels ``j ≥ 2``: ``C = g_{σ_map} * [|L_1^j| < |L_2^j|]``, ``M = C L_2^j + (1 − C) L_1^j``,
       ``a = 1 / (|mean_7(L_2^j)| + 10^{−6})``, and the minimiser of
       ``Σ_p (D − M)² + λ a (D − L_1^j)²``, which is ``D^j = (M + λ a L_1^j) / (1 + λ a)``
       (``Solve_Optimal.m`` builds a diagonal sparse system; solved here in closed form).
    5. ``F = B + Σ_j D^j``.

    The published code's parameters differ from some in the paper (its readme says so); they are
    used here. Identical inputs are returned unchanged. Measured against the authors' published
    outputs on the 21 TNO pairs of the seed repository, see the project README.

    References
    ----------
    .. [1] Ma, Zhou, Wang & Zong, "Infrared and visible image fusion based on visual saliency
       map and weighted least square optimization", Infrared Physics & Technology 82:8–17
       (2017). doi:10.1016/j.infrared.2017.02.005
    .. [2] Zhang, Shen, Xu & Jia, "Rolling guidance filter", ECCV 2014.
    """
    ir, vis = _as_unit_pair(infrared, visible)
    levels = _check_int(levels, "levels", minimum=1)
    iterations = _check_int(iterations, "iterations", minimum=1)
    window = _check_odd(wls_window, "wls_window")
    sigma_s = _check_positive(sigma_s, "sigma_s")
    sigma_r = _check_positive(sigma_r, "sigma_r")
    sigma_map = _check_positive(sigma_map, "sigma_map")
    lam = _check_positive(lam, "lam", allow_zero=True)

    i1, i2 = vis, ir  # the code's order: I1 visible, I2 infrared
    details1, base1 = _decompose(i1, levels, sigma_s, sigma_r, iterations)
    details2, base2 = _decompose(i2, levels, sigma_s, sigma_r, iterations)

    v1 = _visual_saliency(i1)
    v2 = _visual_saliency(i2)
    fused = (0.5 + 0.5 * (v1 - v2)) * base1 + (0.5 + 0.5 * (v2 - v1)) * base2

    d1, d2 = details1[0], details2[0]
    fused += np.where(np.abs(d1) < np.abs(d2), d2, d1)

    map_radius = int(np.floor(3.0 * sigma_map))
    for d1, d2 in zip(details1[1:], details2[1:], strict=True):
        choose2 = (np.abs(d1) < np.abs(d2)).astype(np.float64)
        choose2 = _gaussian_blur(choose2, map_radius, sigma_map, mode="reflect")  # 'symmetric'
        target = choose2 * d2 + (1.0 - choose2) * d1
        fused += _wls_detail(target, d1, d2, lam, window)
    return fused.astype(np.float32)


def _wls_detail(
    target: np.ndarray, d1: np.ndarray, d2: np.ndarray, lam: float, window: int
) -> np.ndarray:
    """``Solve_Optimal.m`` in closed form: ``(M + λ a d_1) / (1 + λ a)``.

    The code solves ``(2 I + λ (A + Aᵀ)) d = 2 M + λ (A + Aᵀ) d_1`` with the diagonal
    ``A = diag(1 / (|mean_w(d_2)| + 10⁻⁶))`` (mean over ``window``², replicated border); a
    diagonal system, so each pixel is solved on its own.
    """
    a = 1.0 / (np.abs(_box_mean(d2, window, "edge")) + 1e-6)
    return (target + lam * a * d1) / (1.0 + lam * a)
