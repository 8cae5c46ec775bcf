"""Fusion quality metrics, as the infrared–visible fusion literature reports them.

Every metric is a function ``f(infrared, visible, fused) -> float`` (``entropy`` takes the one
image it measures); :data:`REGISTRY` lists them (name, function, better direction, source), and
:data:`METRIC_NAMES`, :data:`DIRECTIONS` and :func:`resolve_names` derive from it.
:func:`compute_metrics` runs any selection of them on one triple (validating the inputs once)
and :func:`metrics_table` over many pairs and methods, with each method's mean.

Sources of the definitions:

* ``entropy``, ``qabf``, ``fmi_pixel``, ``fmi_dct``, ``fmi_wavelet``, ``nabf``, ``scd`` and
  ``ssim_sum`` port the analysis code behind the paper's Table 1 (Li & Wu's DenseFuse analysis
  code, ``diylife/imagefusion_deeplearning``, ``analysis_methods/analysis_MatLab/``);
* ``mutual_information`` is the standard MI(IR, F) + MI(VIS, F) with 256-bin histograms, in bits
  (the reference code's MI is twice the fused image's entropy, a bug);
* ``std``, ``spatial_frequency``, ``average_gradient`` and ``psnr`` port VIFB
  (``xingchenzhang/VIFB``), ``cc`` and ``vif`` the fusion literature's definitions (VIFB has none).

Images are converted by one rule that depends on the data type, never on the content: integers
are divided by the largest value of their type (``uint8`` ÷ 255, as MATLAB's ``im2double`` reads
the reference code's images; ``uint16`` ÷ 65535), floats are taken as given and must lie in
``[0, 1]``, colour becomes luminance.
Nothing here imports torch, napari or Qt.
"""

from .fmi import fmi, fmi_dct, fmi_pixel, fmi_wavelet
from .gradient import nabf, qabf
from .information import entropy, mutual_information
from .registry import DIRECTIONS, METRIC_NAMES, METRICS, REGISTRY, Metric, resolve_names
from .statistics import average_gradient, cc, psnr, spatial_frequency, std, vif
from .structural import scd, ssim_sum
from .table import (
    ERROR_KEY,
    MEAN_PAIR,
    best_cells,
    compute_metrics,
    failed_rows,
    format_markdown,
    format_text,
    iter_metrics,
    metrics_table,
    write_csv,
    write_json,
    write_markdown,
)

__all__ = [
    "DIRECTIONS",
    "ERROR_KEY",
    "MEAN_PAIR",
    "METRICS",
    "METRIC_NAMES",
    "REGISTRY",
    "Metric",
    "average_gradient",
    "best_cells",
    "cc",
    "compute_metrics",
    "entropy",
    "failed_rows",
    "fmi",
    "fmi_dct",
    "fmi_pixel",
    "fmi_wavelet",
    "format_markdown",
    "format_text",
    "iter_metrics",
    "metrics_table",
    "mutual_information",
    "nabf",
    "psnr",
    "qabf",
    "resolve_names",
    "scd",
    "spatial_frequency",
    "ssim_sum",
    "std",
    "vif",
    "write_csv",
    "write_json",
    "write_markdown",
]
