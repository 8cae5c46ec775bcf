"""Gradient-based fusion metrics: Xydeas & Petrovic's Q^{AB/F} and Kumar's modified N^{AB/F}.

Both follow the analysis code behind the paper's Table 1 (Li & Wu's DenseFuse analysis code, as
shipped in ``diylife/imagefusion_deeplearning``, ``analysis_methods/analysis_MatLab/``):
``analysis_Qabf.m`` for :func:`qabf` and ``analysis_nabf.m`` (with ``sobel_fn.m`` and
``per_extn_im_fn.m``) for :func:`nabf`. The two files use *different* gradient models (kernels,
border handling, orientation and sigmoid constants); each is reproduced as written, including the
branches that the literature formulas do not have. MATLAB's loops are replaced by array operations
that take the same branch at every pixel.
"""

from __future__ import annotations

import numpy as np

from ._validate import unit_triple

__all__ = ["nabf", "qabf"]

# ---------------------------------------------------------------------------------------------
# Q^{AB/F} (analysis_Qabf.m)
# ---------------------------------------------------------------------------------------------

# Sobel kernels exactly as analysis_Qabf.m writes them; they are applied with MATLAB's
# conv2(image, kernel, 'same'), i.e. a true convolution (kernel rotated by 180 degrees) with zeros
# outside the image. ``h3`` gives the x response, ``h1`` the y response.
_QABF_H1 = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
_QABF_H3 = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])

# Model parameters of analysis_Qabf.m (Gamma_g, k_g, sigma_g; Gamma_alpha, k_alpha, sigma_alpha).
_QABF_TG, _QABF_KG, _QABF_DG = 0.9994, -15.0, 0.5
_QABF_TA, _QABF_KA, _QABF_DA = 0.9879, -22.0, 0.8


def _conv2_same_zero(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB ``conv2(image, kernel, 'same')`` for a 3 x 3 kernel: convolution, zero borders.

    The products are added in the order MATLAB's ``conv2`` adds them (kernel elements in
    column-major order), so the sums carry the same rounding; see :func:`qabf`, Notes.
    """
    rows, cols = image.shape
    padded = np.zeros((rows + 2, cols + 2))
    padded[1 : rows + 1, 1 : cols + 1] = image
    result = np.zeros((rows, cols))
    for col in range(3):
        for row in range(3):
            weight = kernel[row, col]
            if weight != 0:
                # out(i, j) += kernel(row, col) * image(i + 1 - row, j + 1 - col)
                result += padded[2 - row : 2 - row + rows, 2 - col : 2 - col + cols] * weight
    return result


def _qabf_strength_orientation(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edge strength ``g`` and orientation ``alpha`` as analysis_Qabf.m computes them."""
    sx = _conv2_same_zero(image, _QABF_H3)
    sy = _conv2_same_zero(image, _QABF_H1)
    strength = np.sqrt(sx**2 + sy**2)
    # alpha = atan(sy / sx) (not atan2), and pi/2 wherever sx == 0 (whatever sy is).
    zero_x = sx == 0
    ratio = np.divide(sy, sx, out=np.zeros_like(sy), where=~zero_x)
    orientation = np.where(zero_x, np.pi / 2, np.arctan(ratio))
    return strength, orientation


def _qabf_preservation(
    g_source: np.ndarray, a_source: np.ndarray, g_fused: np.ndarray, a_fused: np.ndarray
) -> np.ndarray:
    """Per-pixel edge preservation Q^{XF} = Q_g^{XF} Q_alpha^{XF} of analysis_Qabf.m."""
    # Relative strength with the code's three branches: g_X > g_F -> g_F / g_X;
    # g_X == g_F -> g_F (the value itself, not 1: 0 on flat areas); otherwise g_X / g_F.
    safe_source = np.where(g_source > 0, g_source, 1.0)
    safe_fused = np.where(g_fused > 0, g_fused, 1.0)
    relative_strength = np.where(
        g_source > g_fused,
        g_fused / safe_source,
        np.where(g_source == g_fused, g_fused, g_source / safe_fused),
    )
    relative_orientation = 1.0 - np.abs(a_source - a_fused) / (np.pi / 2)
    q_g = _QABF_TG / (1.0 + np.exp(_QABF_KG * (relative_strength - _QABF_DG)))
    q_a = _QABF_TA / (1.0 + np.exp(_QABF_KA * (relative_orientation - _QABF_DA)))
    return q_g * q_a


def qabf(infrared, visible, fused) -> float:
    r"""Gradient-based fusion performance Q^{AB/F} of Xydeas & Petrovic, as the paper computed it.

    Higher is better; the value lies in ``[0, 1)``.

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
        ``Q^{AB/F}``.

    Raises
    ------
    ValueError
        If an image is not 2-D, is empty or holds NaN/inf, if the shapes differ, or if both
        sources have zero edge strength everywhere (both all zero), where the measure is 0/0.

    Notes
    -----
    A port of ``analysis_Qabf.m`` (Richang Hong's implementation) from the analysis code behind
    the paper's Table 1. For each image X in {A, B, F}, with MATLAB's zero-padded
    ``conv2(X, h, 'same')``,

    .. math::

        s^x = X * h_3,\quad s^y = X * h_1,\quad
        h_1 = \begin{bmatrix}1&2&1\\0&0&0\\-1&-2&-1\end{bmatrix},\;
        h_3 = \begin{bmatrix}-1&0&1\\-2&0&2\\-1&0&1\end{bmatrix},

    :math:`g = \sqrt{(s^x)^2 + (s^y)^2}` and :math:`\alpha = \arctan(s^y / s^x)`, with
    :math:`\alpha = \pi/2` where :math:`s^x = 0`. For a source X and the fused image F,

    .. math::

        G^{XF} = \begin{cases} g_F / g_X & g_X > g_F \\ g_F & g_X = g_F \\
                 g_X / g_F & g_X < g_F \end{cases},\qquad
        A^{XF} = 1 - \frac{|\alpha_X - \alpha_F|}{\pi/2},

        Q^{XF} = \frac{\Gamma_g}{1 + e^{k_g (G^{XF} - \sigma_g)}}
                 \cdot \frac{\Gamma_\alpha}{1 + e^{k_\alpha (A^{XF} - \sigma_\alpha)}},

    with :math:`\Gamma_g = 0.9994, k_g = -15, \sigma_g = 0.5, \Gamma_\alpha = 0.9879,
    k_\alpha = -22, \sigma_\alpha = 0.8`, and

    .. math::

        Q^{AB/F} = \frac{\sum_{i,j} Q^{AF} g_A + Q^{BF} g_B}{\sum_{i,j} g_A + g_B}.

    Quirks of the reference code, reproduced here:

    * Where :math:`g_X = g_F` exactly, :math:`G^{XF}` is :math:`g_F` itself rather than 1, so
      ``qabf(a, b, a)`` is not the value of a "perfect" fusion and flat areas get
      :math:`G^{XF} = 0`.
    * The orientation uses ``atan`` (range :math:`(-\pi/2, \pi/2)`), not ``atan2``, and
      :math:`A^{XF}` can be negative (down to -1) for opposite orientations.
    * Zero padding makes the image border an edge for any non-zero image.
    * The branches test exact equalities (:math:`s^x = 0`, :math:`g_X = g_F`). Where
      :math:`s^x` is zero in exact arithmetic, floating-point rounding decides between the
      branch :math:`\alpha = \pi/2` and ``atan`` of a huge ratio, :math:`\approx \pm\pi/2`
      with the sign of :math:`s^y / s^x`, which can flip :math:`A^{XF}` from 1 to -1. The
      responses are therefore summed in the order MATLAB's ``conv2`` sums them (kernel
      elements in column-major order) so that they carry the same rounding. On the TNO pairs
      other orders move Q^{AB/F} by up to 6e-3, and exactly computed gradients by up to 2e-2.

    The result is symmetric in the two sources (swapping them leaves it unchanged) and, the
    kernels being odd, unchanged by turning all three images by 180 degrees; a single flip is not
    a symmetry, because the :math:`\pi/2` branch does not change sign with :math:`s^x`.

    References
    ----------
    .. [1] C. S. Xydeas and V. Petrovic, "Objective image fusion performance measure",
       Electronics Letters, 36(4), 308-309, 2000.
    .. [2] H. Li and X.-J. Wu, DenseFuse analysis code, ``analysis_Qabf.m``, as used in
       github.com/diylife/imagefusion_deeplearning (``analysis_methods/analysis_MatLab``).
    """
    return _qabf_core(*unit_triple(infrared, visible, fused))


def _qabf_core(image_a: np.ndarray, image_b: np.ndarray, image_f: np.ndarray) -> float:

    g_a, a_a = _qabf_strength_orientation(image_a)
    g_b, a_b = _qabf_strength_orientation(image_b)
    g_f, a_f = _qabf_strength_orientation(image_f)

    q_af = _qabf_preservation(g_a, a_a, g_f, a_f)
    q_bf = _qabf_preservation(g_b, a_b, g_f, a_f)

    denominator = np.sum(g_a + g_b)
    if denominator == 0:
        raise ValueError(
            "qabf is undefined when infrared and visible both have zero edge strength everywhere "
            "(both images are all zero)"
        )
    return float(np.sum(q_af * g_a + q_bf * g_b) / denominator)


# ---------------------------------------------------------------------------------------------
# N^{AB/F} (analysis_nabf.m, sobel_fn.m, per_extn_im_fn.m)
# ---------------------------------------------------------------------------------------------

# sobel_fn.m: kernels divided by 8, applied by correlation (window times kernel, summed) on the
# image extended by per_extn_im_fn.m. ``vtemp`` responds to horizontal changes, ``htemp`` to
# vertical ones; the code calls the responses gv and gh.
_NABF_VTEMP = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
_NABF_HTEMP = np.array([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]) / 8.0

# Parameters of analysis_nabf.m.
_NABF_TD = 2.0  # edge-strength threshold for the weights
_NABF_WT_MIN = 0.001  # weight of pixels below the threshold
_NABF_LG = 1.5  # exponent of the weights above the threshold
_NABF_NRG, _NABF_KG, _NABF_SIGMAG = 0.9999, 19.0, 0.5
_NABF_NRA, _NABF_KA, _NABF_SIGMAA = 0.9995, 22.0, 0.5


def _extend_by_one(image: np.ndarray) -> np.ndarray:
    """per_extn_im_fn.m with wsize = 3: a one-pixel mirror extension on every side.

    The code copies the second row/column into the pad (``d c b | a b c d | c b a``, border pixel
    not repeated). The copies run in the code's order on a zero-initialised array, so an image
    with a single row (column) gets zero rows (columns) instead, as in MATLAB.
    """
    rows, cols = image.shape
    extended = np.zeros((rows + 2, cols + 2))
    extended[1 : rows + 1, 1 : cols + 1] = image
    # Row-wise: xout_ext(1,:) = xout_ext(3,:); xout_ext(p+2,:) = xout_ext(p,:).
    extended[0, :] = extended[2, :]
    extended[rows + 1, :] = extended[rows - 1, :]
    # Column-wise (after the rows, so corners come from the extended rows).
    extended[:, 0] = extended[:, 2]
    extended[:, cols + 1] = extended[:, cols - 1]
    return extended


def _nabf_gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sobel_fn.m: the responses ``(gv, gh)`` of the 3 x 3 windows of the extended image.

    Each response is ``sum(sum(window .* kernel))``: the three column sums (top to bottom), then
    their sum (left to right), the order MATLAB adds them in; see :func:`nabf`, Notes.
    """
    extended = _extend_by_one(image)
    rows, cols = image.shape
    responses = []
    for kernel in (_NABF_VTEMP, _NABF_HTEMP):
        column_sums = []
        for col in range(3):
            column = extended[0:rows, col : col + cols] * kernel[0, col]
            column = column + extended[1 : rows + 1, col : col + cols] * kernel[1, col]
            column = column + extended[2 : rows + 2, col : col + cols] * kernel[2, col]
            column_sums.append(column)
        responses.append((column_sums[0] + column_sums[1]) + column_sums[2])
    gv, gh = responses
    return gv, gh


def _nabf_orientation(gv: np.ndarray, gh: np.ndarray) -> np.ndarray:
    """``atan(gv / gh)``, and 0 where both responses are 0 (analysis_nabf.m)."""
    both_zero = (gv == 0) & (gh == 0)
    with np.errstate(divide="ignore"):
        # gh == 0 with gv != 0 gives +-inf and atan(+-inf) = +-pi/2, as in MATLAB.
        ratio = np.divide(gv, gh, out=np.zeros_like(gv), where=~both_zero)
    return np.where(both_zero, 0.0, np.arctan(ratio))


def _nabf_relative_strength(g_source: np.ndarray, g_fused: np.ndarray) -> np.ndarray:
    """0 if either strength is 0, else the smaller over the larger (1 where they are equal)."""
    either_zero = (g_source == 0) | (g_fused == 0)
    larger = np.where(either_zero, 1.0, np.maximum(g_source, g_fused))
    smaller = np.minimum(g_source, g_fused)
    return np.where(either_zero, 0.0, smaller / larger)


def _nabf_preservation(
    g_source: np.ndarray, a_source: np.ndarray, g_fused: np.ndarray, a_fused: np.ndarray
) -> np.ndarray:
    """Per-pixel edge preservation Q^{XF} = sqrt(Q_g^{XF} Q_alpha^{XF}) of analysis_nabf.m."""
    relative_strength = _nabf_relative_strength(g_source, g_fused)
    relative_orientation = np.abs(np.abs(a_source - a_fused) - np.pi / 2) * 2 / np.pi
    q_g = _NABF_NRG / (1.0 + np.exp(-_NABF_KG * (relative_strength - _NABF_SIGMAG)))
    q_a = _NABF_NRA / (1.0 + np.exp(-_NABF_KA * (relative_orientation - _NABF_SIGMAA)))
    return np.sqrt(q_g * q_a)


def _nabf_weight(strength: np.ndarray) -> np.ndarray:
    """``g^Lg`` where ``g >= Td``, else ``wt_min`` (analysis_nabf.m, with c = 1)."""
    above = strength >= _NABF_TD
    return np.where(above, np.where(above, strength, 0.0) ** _NABF_LG, _NABF_WT_MIN)


def nabf(infrared, visible, fused) -> float:
    r"""Fusion artefacts N^{AB/F}, B. K. Shreyamsha Kumar's modification, as the paper computed it.

    Lower is better; the value lies in ``[0, 1)``.

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
        Kumar's modified ``N^{AB/F}``.

    Raises
    ------
    ValueError
        If an image is not 2-D, is empty or holds NaN/inf, or if the shapes differ.

    Notes
    -----
    A port of ``analysis_nabf.m`` (B. K. Shreyamsha Kumar, 2011) with ``sobel_fn.m`` and
    ``per_extn_im_fn.m``, from the analysis code behind the paper's Table 1. Petrovic's gradient
    model: each image X is extended by one mirrored pixel (border pixel not repeated) and
    correlated with

    .. math::

        g^v = \tfrac18\begin{bmatrix}-1&0&1\\-2&0&2\\-1&0&1\end{bmatrix},\quad
        g^h = \tfrac18\begin{bmatrix}-1&-2&-1\\0&0&0\\1&2&1\end{bmatrix},

    :math:`g = \sqrt{(g^h)^2 + (g^v)^2}`, :math:`\alpha = \arctan(g^v / g^h)` (0 where both are
    0, :math:`\pm\pi/2` where only :math:`g^h` is 0). For a source X and the fused image F,

    .. math::

        G^{XF} = \begin{cases} 0 & g_X = 0 \text{ or } g_F = 0 \\
                 \min(g_X, g_F) / \max(g_X, g_F) & \text{otherwise} \end{cases},\qquad
        A^{XF} = \frac{\bigl|\,|\alpha_X - \alpha_F| - \pi/2\,\bigr|}{\pi/2},

        Q^{XF} = \sqrt{\frac{N_g}{1 + e^{-k_g (G^{XF} - \sigma_g)}}
                       \cdot \frac{N_\alpha}{1 + e^{-k_\alpha (A^{XF} - \sigma_\alpha)}}},

    with :math:`N_g = 0.9999, k_g = 19, \sigma_g = 0.5, N_\alpha = 0.9995, k_\alpha = 22,
    \sigma_\alpha = 0.5`. The weights are :math:`w_X = g_X^{L}` where :math:`g_X \ge T_d` and
    :math:`w_{min}` elsewhere (:math:`L = 1.5, T_d = 2, w_{min} = 0.001`), and

    .. math::

        N^{AB/F} = \frac{\sum_{i,j} AM \,[(1 - Q^{AF}) w_A + (1 - Q^{BF}) w_B]}
                        {\sum_{i,j} w_A + w_B},\qquad
        AM = [g_F > g_A \text{ and } g_F > g_B].

    Quirk of the reference code, reproduced here: the code runs on the ``[0, 1]`` images
    (``im2double``), where :math:`g \le \sqrt{2}/2 < T_d = 2`, so **every weight equals**
    :math:`w_{min}` and the measure reduces to the unweighted mean
    :math:`\tfrac12 \operatorname{mean}(AM\,[(1 - Q^{AF}) + (1 - Q^{BF})])` over all pixels.
    The threshold was meant for 0-255 images. The result is symmetric in the two sources.

    Because every pixel has the same weight, flat and nearly flat areas count fully, and there
    the branches on exact zeros (:math:`g = 0`, :math:`g^v = g^h = 0`) and the test
    :math:`g_F > g_A, g_B` depend on floating-point rounding of responses that are zero in exact
    arithmetic. The responses are therefore summed in ``sobel_fn.m``'s order (MATLAB's
    ``sum(sum(window .* kernel))``: column sums, then across) so that they carry the same
    rounding; on the TNO pairs another order moves N^{AB/F} by up to 3e-3, and exactly computed
    gradients by up to 1e-2.

    References
    ----------
    .. [1] B. K. Shreyamsha Kumar, "Multifocus and multispectral image fusion based on pixel
       significance using discrete cosine harmonic wavelet transform", Signal, Image and Video
       Processing, 7(6), 1125-1143, 2013.
    .. [2] V. Petrovic and C. Xydeas, "Objective image fusion performance characterisation",
       ICCV 2005, 1866-1871.
    .. [3] H. Li and X.-J. Wu, DenseFuse analysis code, ``analysis_nabf.m``, as used in
       github.com/diylife/imagefusion_deeplearning (``analysis_methods/analysis_MatLab``).
    """
    return _nabf_core(*unit_triple(infrared, visible, fused))


def _nabf_core(image_a: np.ndarray, image_b: np.ndarray, image_f: np.ndarray) -> float:

    strengths = []
    orientations = []
    for image in (image_a, image_b, image_f):
        gv, gh = _nabf_gradients(image)
        strengths.append(np.sqrt(gh**2 + gv**2))
        orientations.append(_nabf_orientation(gv, gh))
    (g_a, g_b, g_f), (a_a, a_b, a_f) = strengths, orientations

    q_af = _nabf_preservation(g_a, a_a, g_f, a_f)
    q_bf = _nabf_preservation(g_b, a_b, g_f, a_f)
    w_a = _nabf_weight(g_a)
    w_b = _nabf_weight(g_b)

    artefact = (g_f > g_a) & (g_f > g_b)
    numerator = np.sum(np.where(artefact, (1.0 - q_af) * w_a + (1.0 - q_bf) * w_b, 0.0))
    return float(numerator / np.sum(w_a + w_b))
