"""The one registry of fusion metrics: name, function, better direction and source.

Everything that lists, checks or orders metric names reads it: :data:`METRIC_NAMES`,
:data:`DIRECTIONS` and :data:`METRICS` are derived from :data:`REGISTRY`, and
:func:`resolve_names` is the one check of a user's selection (used by
:func:`~napari_resfuse.metrics.compute_metrics`, ``resfuse metrics``, ``resfuse compare`` and the
metrics widget).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._validate import check_same_shape, to_unit_float
from .fmi import (
    _fmi_dct_core,
    _fmi_pixel_core,
    _fmi_wavelet_core,
    fmi_dct,
    fmi_pixel,
    fmi_wavelet,
)
from .gradient import _nabf_core, _qabf_core, nabf, qabf
from .information import _entropy_core, _mutual_information_core, mutual_information
from .statistics import (
    _average_gradient_core,
    _cc_core,
    _psnr_core,
    _spatial_frequency_core,
    _std_core,
    _vif_core,
    average_gradient,
    cc,
    psnr,
    spatial_frequency,
    std,
    vif,
)
from .structural import _scd_core, _ssim_sum_core, scd, ssim_sum

__all__ = [
    "DIRECTIONS",
    "METRICS",
    "METRIC_NAMES",
    "REGISTRY",
    "Metric",
    "get_metric",
    "resolve_names",
]

MetricFunction = Callable[[object, object, object], float]
_Core = Callable[[np.ndarray, np.ndarray, np.ndarray], float]

_TABLE_1 = "Li & Wu's DenseFuse analysis code (the paper's Table 1)"
_VIFB = "VIFB (Zhang, Ye & Xiao 2020)"


@dataclass(frozen=True)
class Metric:
    """One fusion quality metric.

    Attributes
    ----------
    name : str
        The name used everywhere (tables, ``--names``, the widget), e.g. ``"qabf"``.
    func : callable
        The public function ``func(infrared, visible, fused) -> float``; it validates its inputs.
    direction : {"higher", "lower"}
        Which values are better.
    reference : str
        Where the definition comes from (the function's docstring has the details).
    core : callable
        The same computation on a triple already validated and converted to ``[0, 1]`` float64
        (what :func:`~napari_resfuse.metrics.compute_metrics` calls after validating once).
    """

    name: str
    func: MetricFunction
    direction: str
    reference: str
    core: _Core = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.direction not in ("higher", "lower"):
            raise ValueError(f"direction must be 'higher' or 'lower', got {self.direction!r}")


def _fused_entropy(infrared, visible, fused) -> float:
    """Entropy (EN) of the fused image, in the ``(infrared, visible, fused)`` form of the table.

    The sources are validated as by every other metric; the value is
    :func:`napari_resfuse.metrics.information.entropy` of ``fused``.
    """
    images = {
        "infrared": to_unit_float("infrared", infrared),
        "visible": to_unit_float("visible", visible),
        "fused": to_unit_float("fused", fused),
    }
    check_same_shape(**images)
    return _entropy_core(images["fused"])


def _fused_entropy_core(ir: np.ndarray, vis: np.ndarray, fus: np.ndarray) -> float:
    return _entropy_core(fus)


#: Every metric, in the order of the tables (the paper's Table 1 metrics first).
REGISTRY: tuple[Metric, ...] = (
    Metric("entropy", _fused_entropy, "higher", _TABLE_1, _fused_entropy_core),
    Metric("std", std, "higher", _VIFB, _std_core),
    Metric("spatial_frequency", spatial_frequency, "higher", _VIFB, _spatial_frequency_core),
    Metric("average_gradient", average_gradient, "higher", _VIFB, _average_gradient_core),
    Metric(
        "mutual_information",
        mutual_information,
        "higher",
        "Qu, Zhang & Yan 2002 (standard MI, not Table 1's)",
        _mutual_information_core,
    ),
    Metric("qabf", qabf, "higher", _TABLE_1, _qabf_core),
    Metric("fmi_pixel", fmi_pixel, "higher", _TABLE_1, _fmi_pixel_core),
    Metric("fmi_dct", fmi_dct, "higher", _TABLE_1, _fmi_dct_core),
    Metric("fmi_wavelet", fmi_wavelet, "higher", _TABLE_1, _fmi_wavelet_core),
    # Only Nabf, the share of artefacts (noise) the fusion added, is better lower.
    Metric("nabf", nabf, "lower", _TABLE_1, _nabf_core),
    Metric("scd", scd, "higher", _TABLE_1, _scd_core),
    Metric("ssim_sum", ssim_sum, "higher", _TABLE_1, _ssim_sum_core),
    Metric("vif", vif, "higher", "Sheikh & Bovik 2006, multi-scale pixel VIF", _vif_core),
    Metric("psnr", psnr, "higher", _VIFB, _psnr_core),
    Metric("cc", cc, "higher", "mean Pearson correlation with each source", _cc_core),
)

_BY_NAME = {metric.name: metric for metric in REGISTRY}

#: Every metric name, in table order.
METRIC_NAMES: tuple[str, ...] = tuple(metric.name for metric in REGISTRY)

#: Name -> function ``f(infrared, visible, fused) -> float``, derived from :data:`REGISTRY`.
METRICS: dict[str, MetricFunction] = {metric.name: metric.func for metric in REGISTRY}

#: Name -> ``"higher"`` or ``"lower"``: which values are better, derived from :data:`REGISTRY`.
DIRECTIONS: dict[str, str] = {metric.name: metric.direction for metric in REGISTRY}


def get_metric(name: str) -> Metric:
    """The :class:`Metric` called ``name`` (KeyError if there is none)."""
    return _BY_NAME[name]


def resolve_names(names=None, *, label: str = "names") -> tuple[str, ...]:
    """Check a selection of metric names; return it in table order, without duplicates.

    Parameters
    ----------
    names : str or iterable of str, optional
        One name or several; ``None`` selects every metric.
    label : str
        What to call the argument in error messages (e.g. ``"--names"``).

    Returns
    -------
    tuple of str
        The selected names in :data:`METRIC_NAMES` order.

    Raises
    ------
    ValueError
        If a name is unknown (the message lists the valid ones) or nothing is selected.
    """
    if names is None:
        return METRIC_NAMES
    if isinstance(names, str):
        names = [names]
    chosen = set()
    for name in names:
        if name not in _BY_NAME:
            raise ValueError(
                f"{label}: unknown metric {name!r}; choose from {', '.join(METRIC_NAMES)}"
            )
        chosen.add(name)
    if not chosen:
        raise ValueError(f"{label}: select at least one metric")
    return tuple(name for name in METRIC_NAMES if name in chosen)
