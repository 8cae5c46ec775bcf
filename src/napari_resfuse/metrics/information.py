"""Information-theoretic fusion metrics: entropy (EN) and mutual information (MI).

Inputs are converted by :func:`napari_resfuse.metrics._validate.to_unit_float`, shared by every
metric module.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import entropy as _scipy_entropy

from ._validate import quantise_8bit, to_unit_float, unit_triple

__all__ = ["entropy", "mutual_information"]


def _entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy in bits of a histogram given as counts."""
    return float(_scipy_entropy(counts, base=2))


def entropy(image) -> float:
    """Entropy (EN) of an image in bits, as MATLAB's ``entropy`` computes it.

    Parameters
    ----------
    image : array_like
        Usually the fused image; converted as every metric input (``uint8`` / 255).

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
    return _entropy_core(to_unit_float("image", image))


def _entropy_core(image: np.ndarray) -> float:
    """EN of a validated ``[0, 1]`` image."""
    levels = quantise_8bit(image)
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
        Images of one shape, converted as every metric input and quantised to 256 levels
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
    return _mutual_information_core(*unit_triple(infrared, visible, fused))


def _mutual_information_core(ir: np.ndarray, vis: np.ndarray, fus: np.ndarray) -> float:
    """MI of a validated triple."""
    ir_q, vis_q, fus_q = (quantise_8bit(x) for x in (ir, vis, fus))
    return _mutual_information_8bit(ir_q, fus_q) + _mutual_information_8bit(vis_q, fus_q)
