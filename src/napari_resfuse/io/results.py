"""Writing a fusion result: the fused image, its name in folder runs, the intermediate maps."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .files import write_text_atomic
from .images import TIFF_SUFFIXES, from_unit_range, write_image

__all__ = ["output_name", "write_result"]


def output_name(name: str, infrared_path: str | os.PathLike, dtype: np.dtype) -> str:
    """The file name of a pair's fused image in folder runs (``resfuse fuse``, ``batch``,
    ``compare``): ``NAME.png`` when the data fit PNG (8- or 16-bit integers) and the infrared
    image is not a TIFF; ``NAME.tif`` otherwise (float or 32-bit data, TIFF inputs). Always
    lossless."""
    tiff = Path(infrared_path).suffix.lower() in TIFF_SUFFIXES
    fits_png = np.dtype(dtype) in (np.uint8, np.uint16)
    return f"{name}{'.png' if fits_png and not tiff else '.tif'}"


def _maps(result) -> dict[str, np.ndarray]:
    maps = {}
    for k, source in enumerate(("ir", "vis")):
        maps[f"base_{source}"] = result.base[k]
        maps[f"detail_{source}"] = result.detail[k]
        maps[f"weights_{source}"] = result.weights[k]
        for i, level in enumerate(result.levels):
            maps[f"weights_{source}_{level}"] = result.level_weights[k, i]
    maps["fused_base"] = result.fused_base
    maps["fused_detail"] = result.fused_detail
    return maps


def write_result(
    result,
    out_path: str | os.PathLike,
    dtype,
    intermediates: str | os.PathLike | None = None,
    fmt: str = "tif",
) -> list[Path]:
    """Write a :class:`~napari_resfuse.FusionResult`: the fused image in ``dtype`` at
    ``out_path`` and, with ``intermediates`` (a folder), every map as ``<stem>_<map>.<fmt>``
    plus ``<stem>_params.json``. Every file is written atomically.

    ``fmt`` ``"tif"`` keeps the exact float32 values; ``"png"`` gives 8-bit pictures (detail
    shown as ``0.5 + d``). Returns the paths written, the fused image first.
    """
    out_path = Path(out_path)
    written = [write_image(out_path, from_unit_range(result.fused, dtype))]
    if intermediates is None:
        return written
    folder, stem = Path(intermediates), out_path.stem
    for name, image in _maps(result).items():
        if fmt == "png":
            shown = image + 0.5 if "detail" in name else image
            data = from_unit_range(shown, np.uint8)
        else:
            data = image.astype(np.float32)
        written.append(write_image(folder / f"{stem}_{name}.{fmt}", data))
    for k, source in enumerate(("ir", "vis")):
        path = folder / f"{stem}_winning_level_{source}.{fmt}"
        written.append(write_image(path, result.winning_level[k]))
    params = {"params": result.params, "timings": result.timings}
    write_text_atomic(folder / f"{stem}_params.json", json.dumps(params, indent=2, default=str))
    return written
