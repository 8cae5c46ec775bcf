"""Compare fusion methods: the method's variants and the baselines, side by side.

:data:`METHODS` names every method the comparison knows: the paper's method (``"resfuse"``),
its variants (``"resfuse-l2"``, ``"resfuse-resnet50"``, ``"resfuse-resnet101"``,
``"resfuse-vgg19"``, ``"resfuse-published-code"``) and the baselines of
:mod:`napari_resfuse.baselines`. :func:`compare` fuses every pair of a folder with every chosen
method, computes :mod:`napari_resfuse.metrics`, and writes a report; :func:`iter_compare` does
the same step by step (for progress bars); :func:`iter_compare_arrays` compares the methods on
one pair held in memory (the napari widget's worker).

The pairs folder (``PAIRS_DIR``) holds an infrared and a visible sub-folder (``ir/`` and
``vis/``, ``infrared/`` and ``visible/``, ...), paired by :func:`napari_resfuse.io.find_pairs`,
the rule of every command: by file name without extension (``ir/IR1.png`` pairs with
``vis/IR1.png``). The report folder receives::

    REPORT_DIR/
      metrics.csv            one row per pair and method, then each method's mean
      metrics.md             the means (best value per metric in bold, ↑/↓ its direction),
                             then every pair
      grid.png               rows = pairs; columns = infrared, visible, then the methods
      fused/<method>/<pair>.png   the fused images (named by io.output_name), reused next time
      fused/<method>/settings.json  what made them (weights, seed, package version)

A second run over the same folders reuses every fused image whose method settings are
unchanged, so an interrupted comparison resumes where it stopped, and adding a method only
fuses with that method. A pair that cannot be read, a method that rejects a pair and an image
without a partner are listed in :attr:`CompareReport.failed` (and in ``metrics.md``; as rows of
NaN in ``metrics.csv``); the rest is compared.

The module's parts: :mod:`napari_resfuse.compare_methods` (the methods) and
:mod:`napari_resfuse.compare_report` (tables and grid).

Inputs and outputs follow the rest of the package: ``uint8`` is divided by 255, any other type
scaled by its own minimum and maximum; a colour image (either source) is compared on its BT.601
luminance; every method gets the same two grey ``[0, 1]`` images. The fused image is clipped to
``[0, 1]`` and written in the sources' type (``uint8`` or ``uint16`` PNG, TIFF for TIFF
sources and other types); the metrics read it back from that file, as
the published tables are computed from saved images.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .alignment import Alignment
from .compare_methods import (
    BACKBONE_OF_BASELINE,
    DEFAULT_METHODS,
    METHODS,
    Method,
    _MethodFolder,
    _weights_for,
    resolve_methods,
)
from .compare_report import _display, _report_markdown, format_means_markdown, grid_image
from .io import (
    atomic_path,
    check_not_inputs,
    check_writable_folder,
    find_pairs,
    from_unit_range,
    output_dtype,
    output_name,
    read_image,
    write_image,
    write_text_atomic,
)
from .metrics import resolve_names
from .metrics.table import MEAN_PAIR, compute_metrics, write_csv

__all__ = [
    "BACKBONE_OF_BASELINE",
    "DEFAULT_METHODS",
    "METHODS",
    "CompareProgress",
    "CompareReport",
    "Method",
    "MethodResult",
    "compare",
    "find_pairs",
    "format_means_markdown",
    "fuse_pair",
    "grid_image",
    "iter_compare",
    "iter_compare_arrays",
    "resolve_methods",
]

# --------------------------------------------------------------------------------------------
# One pair
# --------------------------------------------------------------------------------------------


class _Sources(NamedTuple):
    infrared: np.ndarray  # grey float64 [0, 1], what every method gets
    visible: np.ndarray
    infrared_metric: np.ndarray  # grey, in the source's dtype, what the metrics read
    visible_metric: np.ndarray
    dtype: np.dtype  # the fused image's dtype


def _grey(name: str, image, value_range=None) -> tuple[np.ndarray, np.ndarray]:
    """A source as grey float64 ``[0, 1]`` (for the methods) and as the metrics read it.

    A colour image becomes its BT.601 luminance: for the metrics ``uint8`` again (rounded, as
    MATLAB's ``rgb2gray``), float ``[0, 1]`` for other types. A grey integer image is kept as it
    is, a grey float image goes to the metrics as its ``[0, 1]`` version.
    ``value_range`` maps values to ``[0, 1]`` instead of the default (``uint8`` / 255, else
    min/max).
    """
    from .method.inputs import rgb_to_ycbcr, to_unit_range

    array = np.asarray(image)
    colour = array.ndim == 3 and array.shape[-1] in (3, 4)
    if array.ndim != 2 and not colour:
        raise ValueError(
            f"{name} image must be 2-D (grey) or RGB(A) (H, W, 3|4); got shape {array.shape}"
        )
    if not colour:
        unit, _ = to_unit_range(name, array, value_range)
        unit = np.clip(unit.astype(np.float64), 0.0, 1.0)
        # The metrics take integers by their type's range and floats only on [0, 1].
        return unit, array if value_range is None and array.dtype.kind in "biu" else unit
    unit, _ = to_unit_range(name, array[..., :3], value_range)
    luma = np.clip(rgb_to_ycbcr(unit.astype(np.float64))[..., 0], 0.0, 1.0)
    if array.dtype == np.uint8:
        return luma, np.round(luma * 255.0).astype(np.uint8)
    return luma, luma


def _prepare(infrared, visible, value_ranges=(None, None)) -> _Sources:
    ir, ir_raw = _grey("infrared", infrared, value_ranges[0])
    vis, vis_raw = _grey("visible", visible, value_ranges[1])
    if ir.shape != vis.shape:
        raise ValueError(
            f"infrared and visible images differ in size: infrared {ir.shape} vs visible "
            f"{vis.shape}"
        )
    return _Sources(ir, vis, ir_raw, vis_raw, output_dtype(ir_raw.dtype, vis_raw.dtype))


def _prepare_aligned(infrared, visible, align: Alignment, value_ranges=None) -> _Sources:
    """:func:`_prepare` of a pair put on one grid first, as ``fuse(..., registration=)`` does.
    Each source is scaled by its unaligned image's range; the
    metrics read a ``uint8`` source as ``uint8`` again (the grey ``[0, 1]`` image, rounded) and
    any other as that float image; the fused image keeps the sources' type. ``value_ranges``
    as for :func:`iter_compare_arrays` (None: each image's own range)."""
    ir, vis = np.asarray(infrared), np.asarray(visible)
    aligned = align.align(ir, vis, value_ranges)
    sources = _prepare(aligned.infrared, aligned.visible, aligned.value_range)
    metric = [
        from_unit_range(unit, np.uint8) if original.dtype == np.uint8 else unit
        for unit, original in ((sources.infrared, ir), (sources.visible, vis))
    ]
    return sources._replace(
        infrared_metric=metric[0],
        visible_metric=metric[1],
        dtype=output_dtype(ir.dtype, vis.dtype),
    )


def fuse_pair(
    infrared,
    visible,
    method: str,
    *,
    weights: str | Mapping[str, str] = "imagenet",
    seed: int = 0,
    device: str = "auto",
) -> np.ndarray:
    """Fuse one pair with one method of :data:`METHODS`, as the comparison does.

    Parameters
    ----------
    infrared, visible : array_like
        2-D images (or RGB(A), compared on their luminance) of the same size; ``uint8`` is
        divided by 255, other types scaled by their own minimum and maximum.
    method : str
        A key of :data:`METHODS`.
    weights : str or mapping
        For the methods that run a network: ``"imagenet"``, ``"random"`` (seeded, testing
        only) or a weights file for every network, or a mapping from backbone
        (``"resnet152"``, ``"resnet101"``, ``"resnet50"``, ``"vgg19"``) to such a setting,
        ``"imagenet"`` for backbones it leaves out.
    seed : int
        Seed of ``"random"`` weights.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...

    Returns
    -------
    ndarray
        float32, the sources' height and width, clipped to ``[0, 1]``.
    """
    (name,) = resolve_methods([method])
    sources = _prepare(infrared, visible)
    return _run(METHODS[name], sources, weights, seed, device)


def _run(method: Method, sources: _Sources, weights, seed: int, device: str) -> np.ndarray:
    fused = method.function(
        sources.infrared,
        sources.visible,
        weights=_weights_for(method, weights),
        seed=seed,
        device=device,
    )
    fused = np.asarray(fused, dtype=np.float32)
    if fused.shape != sources.infrared.shape:
        raise ValueError(
            f"method {method.name!r} returned shape {fused.shape} for sources of shape "
            f"{sources.infrared.shape}"
        )
    return np.clip(fused, 0.0, 1.0)


class MethodResult(NamedTuple):
    """One method's output on one pair: the fused image (in the sources' dtype, as written to
    files) and its metrics."""

    method: str
    fused: np.ndarray
    metrics: dict[str, float]


def iter_compare_arrays(
    infrared,
    visible,
    methods: str | Iterable[str] | None = None,
    *,
    weights: str | Mapping[str, str] = "imagenet",
    seed: int = 0,
    device: str = "auto",
    metrics: Iterable[str] | None = None,
    value_ranges: tuple[Any, Any] = (None, None),
    registration=None,
) -> Generator[MethodResult, None, list[dict[str, Any]]]:
    """Compare methods on one pair in memory, one method at a time.

    Yields a :class:`MethodResult` per method (in the order given) and returns the metric
    rows (one per method, then their mean rows, as :func:`napari_resfuse.metrics.metrics_table`
    makes them, the pair named ``"pair"``). Arguments as for :func:`compare`, and
    ``value_ranges``: ``(low, high)`` or None per source (infrared, visible), mapping its values
    to ``[0, 1]`` (None: ``uint8`` / 255, other types by their min/max; a source with a range
    is then measured as the float ``[0, 1]`` image). Closing the generator stops between
    methods. ``registration`` (None, ``"auto"``, a Registration or a file): the infrared
    image is first resampled onto the visible grid, the whole frame kept (``crop=None``, as
    the napari layer path of :func:`napari_resfuse.fuse_layers` does it); every method gets
    the same aligned pair.
    """
    names = resolve_methods(methods)
    metric_names = _metric_names(metrics)
    if registration is None:
        sources = _prepare(infrared, visible, value_ranges)
    else:
        ir, vis = np.asarray(infrared), np.asarray(visible)
        align = Alignment.for_stacks(registration, ir, vis, grid="visible", crop=None)
        sources = _prepare_aligned(ir, vis, align, value_ranges)
    rows = []
    for name in names:
        unit = _run(METHODS[name], sources, weights, seed, device)
        fused = from_unit_range(unit, sources.dtype)
        values = _metrics(sources, fused, metric_names, "pair", name)
        rows.append({"pair": "pair", "method": name, **values})
        yield MethodResult(name, fused, values)
    return rows + _mean_rows(rows, metric_names)


def _metric_names(metrics) -> list[str]:
    return list(resolve_names(metrics, label="metrics"))


def _metrics(sources: _Sources, fused, names, pair: str, method: str) -> dict[str, float]:
    try:
        return compute_metrics(sources.infrared_metric, sources.visible_metric, fused, names)
    except ValueError as exc:
        raise ValueError(f"pair {pair!r}, method {method!r}: {exc}") from exc


def _mean_rows(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    methods: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        methods.setdefault(str(row["method"]), []).append(row)
    return [
        {
            "pair": MEAN_PAIR,
            "method": method,
            **{n: float(np.mean([float(r[n]) for r in group])) for n in names},
        }
        for method, group in methods.items()
    ]


@dataclass(frozen=True)
class CompareProgress:
    """A step of :func:`iter_compare`: ``step`` of ``total`` done.

    ``action`` is ``"start"`` (step 0, before any work: the inputs were checked),
    ``"fused"`` (the method ran), ``"reused"`` (an earlier run's image was read),
    ``"failed"`` (the pair, or the method on it, failed: see :attr:`CompareReport.failed`) or
    ``"report"`` (the report files were written, the last step).
    """

    step: int
    total: int
    pair: str | None
    method: str | None
    action: str


@dataclass
class CompareReport:
    """What :func:`compare` produced.

    Attributes
    ----------
    rows : list of dict
        One row per pair and method, then one mean row per method (``pair == "mean"``).
    pairs, methods : tuple of str
        In report order.
    csv, markdown, grid : Path
        The report files.
    fused : dict
        ``(pair, method) -> path`` of each fused image.
    fused_count, reused_count : int
        Images fused in this run, and images reused from an earlier one.
    failed : dict
        What could not be done, ``name -> reason``: a pair whose images cannot be read
        (``"p1"``), a method that rejected a pair (``"p1 / resfuse"``), an image without a
        partner (``"ir/c.png"``). The other pairs and methods are in the report.
    """

    rows: list[dict[str, Any]]
    pairs: tuple[str, ...]
    methods: tuple[str, ...]
    csv: Path
    markdown: Path
    grid: Path
    fused: dict[tuple[str, str], Path] = field(default_factory=dict)
    fused_count: int = 0
    reused_count: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every pair was compared with every method."""
        return not self.failed


def _reusable(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        image = read_image(path)
    except ValueError:
        return None
    return image if image.shape == shape and image.dtype == dtype else None


def iter_compare(
    pairs_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    methods: str | Iterable[str] | None = None,
    *,
    weights: str | Mapping[str, str] = "imagenet",
    seed: int = 0,
    device: str = "auto",
    metrics: Iterable[str] | None = None,
    cell_width: int = 160,
    grid_columns: int | None = None,
    digits: int = 4,
    registration=None,
    grid: str = "visible",
    crop: str | None = "overlap",
) -> Generator[CompareProgress, None, CompareReport]:
    """:func:`compare`, yielding a :class:`CompareProgress` at the start and after each pair
    and method.

    Returns the :class:`CompareReport` (the generator's return value). Closing the generator
    stops between steps; fused images written so far are kept and reused next time.
    """
    names = resolve_methods(methods)
    metric_names = _metric_names(metrics)
    if isinstance(cell_width, bool) or int(cell_width) != cell_width or cell_width < 16:
        raise ValueError(f"cell_width must be an integer >= 16; got {cell_width!r}")
    if grid_columns is not None and (
        isinstance(grid_columns, bool) or int(grid_columns) != grid_columns or grid_columns < 1
    ):
        raise ValueError(f"grid_columns must be a positive integer or None; got {grid_columns!r}")
    pairs = find_pairs(pairs_dir)
    align = None
    if registration is not None:  # checked now, before any work
        align = Alignment.for_pairs(registration, pairs, grid=grid, crop=crop)
    if MEAN_PAIR in pairs.names:
        raise ValueError(f"a pair may not be named {MEAN_PAIR!r} (reserved for the mean rows)")
    out = Path(out_dir)
    check_not_inputs(out, (pairs_dir, pairs.infrared_dir, pairs.visible_dir))
    check_writable_folder(out)
    folders = {
        name: _MethodFolder(out, METHODS[name], weights, seed, align and align.key)
        for name in names
    }
    total = len(pairs) * len(names) + 1
    step = 0
    report = CompareReport(
        rows=[],
        pairs=tuple(pairs.names),
        methods=names,
        csv=out / "metrics.csv",
        markdown=out / "metrics.md",
        grid=out / "grid.png",
    )
    rows: list[dict[str, Any]] = []
    grid_rows: list[tuple[str, list[np.ndarray]]] = []
    yield CompareProgress(0, total, None, None, "start")
    for pair, ir_path, vis_path in pairs:
        try:
            ir, vis = read_image(ir_path), read_image(vis_path)
            sources = _prepare(ir, vis) if align is None else _prepare_aligned(ir, vis, align)
        except (ValueError, FileNotFoundError) as exc:  # this pair only: go on
            report.failed[pair] = str(exc)
            step += len(names)
            yield CompareProgress(step, total, pair, None, "failed")
            continue
        cells = [sources.infrared, sources.visible]
        for name in names:
            folder = folders[name]
            path = folder.path / output_name(pair, ir_path, sources.dtype)
            fused = _reusable(path, sources.infrared.shape, sources.dtype) if folder.same else None
            action = "reused"
            try:
                if fused is None:
                    unit = _run(METHODS[name], sources, weights, seed, device)
                    fused = from_unit_range(unit, sources.dtype)
                    write_image(path, fused)
                    folder.wrote(path)
                    action = "fused"
                values = _metrics(sources, fused, metric_names, pair, name)
            except ValueError as exc:  # this method on this pair only: go on
                report.failed[f"{pair} / {name}"] = str(exc)
                cells.append(np.ones(sources.infrared.shape))  # a blank cell
                action = "failed"
            else:
                report.fused_count += action == "fused"
                report.reused_count += action == "reused"
                report.fused[(pair, name)] = path
                rows.append({"pair": pair, "method": name, **values})
                cells.append(_display(fused))
            step += 1
            yield CompareProgress(step, total, pair, name, action)
        grid_rows.append((pair, cells))

    report.failed.update(pairs.unmatched_items())
    report.rows = rows + _mean_rows(rows, metric_names)
    write_csv(report.rows + _failed_rows(report.failed, names, metric_names), report.csv,
              names=metric_names)  # fmt: skip
    write_text_atomic(
        report.markdown, _report_markdown(report, metric_names, weights, seed, digits)
    )
    if grid_rows:
        grid = grid_image(
            grid_rows, ["infrared", "visible", *names], cell_width=int(cell_width),
            wrap=grid_columns,
        )  # fmt: skip
        with atomic_path(report.grid) as tmp:
            grid.save(tmp, format="PNG", optimize=True)
    step += 1
    yield CompareProgress(step, total, None, None, "report")
    return report


def _failed_rows(failed: Mapping[str, str], methods, metric_names) -> list[dict[str, Any]]:
    """The failed (pair, method) cells as rows of NaN, so the CSV shows what is missing."""
    rows = []
    for item in failed:
        pair, _, method = item.partition(" / ")
        if "/" in pair and not method:
            continue  # an unmatched image: no pair to name
        for name in [method] if method else methods:
            rows.append({"pair": pair, "method": name, **dict.fromkeys(metric_names, math.nan)})
    return rows


def compare(
    pairs_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    methods: str | Iterable[str] | None = None,
    *,
    weights: str | Mapping[str, str] = "imagenet",
    seed: int = 0,
    device: str = "auto",
    metrics: Iterable[str] | None = None,
    cell_width: int = 160,
    grid_columns: int | None = None,
    digits: int = 4,
    progress: Callable[[CompareProgress], Any] | None = None,
    registration=None,
    grid: str = "visible",
    crop: str | None = "overlap",
) -> CompareReport:
    """Fuse every pair of a folder with every method, compute metrics, write a report.

    Parameters
    ----------
    pairs_dir : path
        A folder with ``ir/`` and ``vis/`` (or ``infrared/`` and ``visible/``) sub-folders,
        images paired by file name without extension (see the module docstring).
    out_dir : path
        The report folder (created): ``metrics.csv``, ``metrics.md``, ``grid.png`` and the
        fused images under ``fused/<method>/``.
    methods : str or iterable of str, optional
        Names of :data:`METHODS` (a comma-separated string works too; ``"all"`` for every
        method); default :data:`DEFAULT_METHODS`.
    weights : str or mapping
        ``"imagenet"`` (torchvision's pretrained weights: cached, else downloaded),
        ``"random"`` (seeded random weights: testing only, the numbers mean nothing) or a
        weights file, for every method that runs a network; or a mapping from backbone
        (``"resnet152"``, ``"resnet101"``, ``"resnet50"``, ``"vgg19"``) to one of those,
        ``"imagenet"`` for the backbones it leaves out.
    seed : int
        Seed of ``"random"`` weights.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    metrics : iterable of str, optional
        Metric names (:data:`napari_resfuse.metrics.METRIC_NAMES`); all by default.
    cell_width : int
        Width in pixels of each image in the grid (images are shrunk, never enlarged).
    grid_columns : int, optional
        At most this many images per line of the grid; a pair's row wraps onto more lines
        (each under its images' titles). Default: one line per pair.
    digits : int
        Decimal places in the Markdown tables.
    progress : callable, optional
        Called with each :class:`CompareProgress`.
    registration : None, "auto", Registration or path, optional
        Align each pair first, as :func:`napari_resfuse.fuse` does, so that every method gets
        the same aligned pair: a registration (file) is one rig for every pair (a file for
        other shapes than the first pair's is refused before any work; another pair of other
        shapes fails alone); ``"auto"`` registers each pair. The metrics then measure the
        aligned (cropped) sources.
    grid, crop :
        As for :func:`napari_resfuse.fuse`, with a registration.

    Returns
    -------
    CompareReport

    Raises
    ------
    FileNotFoundError
        ``pairs_dir`` does not exist, or a weights file is missing, or ImageNet weights are
        neither cached nor downloadable.
    ValueError
        Unknown methods or metrics, a badly laid out pairs folder, an unreadable image, or a
        method that rejects a pair (the message names the pair and the method).

    Notes
    -----
    Resumable: a fused image already in ``out_dir/fused/<method>/`` is read instead of fused
    again when the method's settings (weights, seed, package version; see ``settings.json``)
    are those of this run. The metrics are always computed again.

    Examples
    --------
    >>> from napari_resfuse.compare import compare
    >>> report = compare("tno", "report", ["resfuse", "gff", "cbf"])  # doctest: +SKIP
    >>> report.markdown.read_text()  # doctest: +SKIP
    """
    runner = iter_compare(
        pairs_dir,
        out_dir,
        methods,
        weights=weights,
        seed=seed,
        device=device,
        metrics=metrics,
        cell_width=cell_width,
        grid_columns=grid_columns,
        digits=digits,
        registration=registration,
        grid=grid,
        crop=crop,
    )
    from .method.fuse import run_with_progress

    return run_with_progress(runner, progress)
