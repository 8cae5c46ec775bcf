"""Compare fusion methods: the method's variants and the baselines, side by side.

:data:`METHODS` names every method the comparison knows: the paper's method (``"resfuse"``),
its variants (``"resfuse-l2"``, ``"resfuse-resnet50"``, ``"resfuse-resnet101"``,
``"resfuse-vgg19"``, ``"resfuse-published-code"``) and the baselines of
:mod:`napari_resfuse.baselines`. :func:`compare` fuses every pair of a folder with every chosen
method, computes :mod:`napari_resfuse.metrics`, and writes a report; :func:`iter_compare` does
the same step by step (for progress bars); :func:`iter_compare_arrays` compares the methods on
one pair held in memory (the napari widget's worker).

The pairs folder (``PAIRS_DIR``) holds two sub-folders, ``ir/`` and ``vis/`` (or
``infrared/`` and ``visible/``, any letter case), with one image per pair in each, matched by
file name without extension (``ir/IR1.png`` pairs with ``vis/IR1.png``; ``.png``, ``.tif``,
``.tiff``, ``.jpg``, ``.jpeg``, ``.bmp``). The report folder receives::

    REPORT_DIR/
      metrics.csv            one row per pair and method, then each method's mean
      metrics.md             the means (best value per metric in bold, ↑/↓ its direction),
                             then every pair
      grid.png               rows = pairs; columns = infrared, visible, then the methods
      fused/<method>/<pair>.png   the fused images (.tif for float sources), reused next time
      fused/<method>/settings.json  what made them (weights, seed, package version)

A second run over the same folders reuses every fused image whose method settings are
unchanged, so an interrupted comparison resumes where it stopped, and adding a method only
fuses with that method.

Inputs and outputs follow the rest of the package: ``uint8`` is divided by 255, any other type
scaled by its own minimum and maximum; a colour image (either source) is compared on its BT.601
luminance; every method gets the same two grey ``[0, 1]`` images. The fused image is clipped to
``[0, 1]`` and written in the sources' type (``uint8`` PNG for ``uint8`` sources, ``uint16``
PNG for other integers, float32 TIFF for floats); the metrics read it back from that file, as
the published tables are computed from saved images.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import __version__
from .baselines import BASELINES, DEEP_BASELINES
from .io import IMAGE_SUFFIXES, from_unit_range, output_dtype, read_image, write_image
from .metrics import (
    DIRECTIONS,
    MEAN_PAIR,
    best_cells,
    compute_metrics,
    format_markdown,
    resolve_names,
    write_csv,
)

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
# Methods
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """One fusion method of the comparison.

    Attributes
    ----------
    name : str
        Its name in :data:`METHODS`, ``--methods`` and the report.
    description : str
        What it is, with its source.
    backbone : str or None
        The network whose weights it loads (``weights`` may name a file per backbone), or None.
    function : callable
        ``function(infrared, visible, *, weights, seed, device) -> fused``: two grey float
        ``[0, 1]`` images in, the fused float image (unclipped) out.
    """

    name: str
    description: str
    backbone: str | None
    function: Callable[..., np.ndarray]


def _engine(**overrides: Any) -> Callable[..., np.ndarray]:
    def run(infrared, visible, *, weights, seed, device):
        from .method.fuse import fuse
        from .options import FusionOptions

        options = FusionOptions(
            weights=weights, seed=seed, device=device, value_range=(0.0, 1.0), **overrides
        )
        return fuse(infrared, visible, options).fused_unclipped

    return run


def _baseline(name: str) -> Callable[..., np.ndarray]:
    function = BASELINES[name]

    def run(infrared, visible, *, weights, seed, device):
        if name in DEEP_BASELINES:
            return function(infrared, visible, weights=weights, seed=seed, device=device)
        return function(infrared, visible)

    return run


#: The network each deep baseline loads.
BACKBONE_OF_BASELINE: dict[str, str] = {"vgg19_li2018": "vgg19", "resnet50_zca": "resnet50"}

_BASELINE_DESCRIPTIONS = {
    "average": "pixel average",
    "two_scale_max": "31 x 31 box two-scale decomposition, averaged base, choose-max detail",
    "gff": "guided filtering fusion (Li, Kang & Hu 2013)",
    "cbf": "cross bilateral filter fusion (Kumar 2015), port of the published code",
    "wls": "weighted least squares fusion (Ma, Zhou et al. 2017), port of the published code",
    "vgg19_li2018": "VGG-19 multi-layer fusion (Li, Wu & Kittler 2018), port of their code",
    "resnet50_zca": "ResNet-50 + ZCA fusion (Li, Wu & Durrani 2019), port of their code",
}


def _build_methods() -> dict[str, Method]:
    paper = "Zhang et al. 2022"
    engine = {
        "resfuse": ({}, f"{paper}: the paper's method (ResNet-152, l1-norm)", "resnet152"),
        "resfuse-l2": ({"norm": "l2"}, f"{paper} with the l2-norm (eq. 5)", "resnet152"),
        "resfuse-resnet101": (
            {"backbone": "resnet101"},
            f"{paper} on ResNet-101 (same five block outputs)",
            "resnet101",
        ),
        "resfuse-resnet50": (
            {"backbone": "resnet50"},
            f"{paper} on ResNet-50 (same five block outputs)",
            "resnet50",
        ),
        "resfuse-vgg19": (
            {"backbone": "vgg19"},
            f"{paper} on VGG-19 (relu1_1 ... relu5_1)",
            "vgg19",
        ),
        "resfuse-published-code": (
            {"variant": "published-code"},
            f"{paper}, the choices of the authors' published MATLAB code",
            "resnet152",
        ),
    }
    methods = {
        name: Method(name, description, backbone, _engine(**overrides))
        for name, (overrides, description, backbone) in engine.items()
    }
    for name in BASELINES:
        methods[name] = Method(
            name,
            _BASELINE_DESCRIPTIONS.get(name, name),
            BACKBONE_OF_BASELINE.get(name),
            _baseline(name),
        )
    return methods


#: Name -> :class:`Method`: the method's variants first, then the baselines.
METHODS: dict[str, Method] = _build_methods()

#: What a comparison runs unless told otherwise: the paper's method and the classic baselines
#: (no other network, so no other weights download).
DEFAULT_METHODS: tuple[str, ...] = ("resfuse", "average", "two_scale_max", "gff", "cbf", "wls")


def resolve_methods(methods: str | Iterable[str] | None) -> tuple[str, ...]:
    """Check method names; ``None`` gives :data:`DEFAULT_METHODS`, ``"all"`` every method.

    A comma-separated string is split. Order is kept, duplicates dropped.

    Raises
    ------
    ValueError
        An unknown name (the message lists the known ones), or no method at all.
    """
    if methods is None:
        return DEFAULT_METHODS
    if isinstance(methods, str):
        methods = [part.strip() for part in methods.split(",") if part.strip()]
    chosen: list[str] = []
    for name in methods:
        if name == "all":
            chosen.extend(METHODS)
            continue
        if name not in METHODS:
            raise ValueError(
                f"methods: unknown method {name!r}; choose from {', '.join(METHODS)} (or 'all')"
            )
        chosen.append(name)
    chosen = list(dict.fromkeys(chosen))
    if not chosen:
        raise ValueError("methods: choose at least one method")
    return tuple(chosen)


def _weights_for(method: Method, weights: str | Mapping[str, str]) -> str | None:
    """The weights a method loads: one setting for every network, or a per-backbone mapping
    (backbones not in the mapping use ``"imagenet"``)."""
    if method.backbone is None:
        return None
    if isinstance(weights, Mapping):
        return str(weights.get(method.backbone, "imagenet"))
    return str(weights)


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
) -> Generator[MethodResult, None, list[dict[str, Any]]]:
    """Compare methods on one pair in memory, one method at a time.

    Yields a :class:`MethodResult` per method (in the order given) and returns the metric
    rows (one per method, then their mean rows, as :func:`napari_resfuse.metrics.metrics_table`
    makes them, the pair named ``"pair"``). Arguments as for :func:`compare`, and
    ``value_ranges``: ``(low, high)`` or None per source (infrared, visible), mapping its values
    to ``[0, 1]`` (None: ``uint8`` / 255, other types by their min/max; a source with a range
    is then measured as the float ``[0, 1]`` image). Closing the generator stops between
    methods.
    """
    names = resolve_methods(methods)
    metric_names = _metric_names(metrics)
    sources = _prepare(infrared, visible, value_ranges)
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


# --------------------------------------------------------------------------------------------
# Folders of pairs
# --------------------------------------------------------------------------------------------

_IR_FOLDERS = ("ir", "infrared")
_VIS_FOLDERS = ("vis", "visible")


def _natural_key(text: str) -> list:
    """Sort key that orders 'IR2' before 'IR10'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _subfolder(root: Path, names: tuple[str, ...], role: str) -> Path:
    found = [p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in names]
    if not found:
        raise ValueError(
            f"pairs folder {str(root)!r} has no {role} sub-folder: expected one of "
            f"{', '.join(n + '/' for n in names)} (any letter case) holding the {role} images"
        )
    if len(found) > 1:
        raise ValueError(
            f"pairs folder {str(root)!r} has several {role} sub-folders "
            f"({', '.join(p.name for p in found)}); keep one"
        )
    return found[0]


def _images(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in found:
                raise ValueError(
                    f"{found[path.stem].name} and {path.name} in {str(folder)!r} have the same "
                    "name without extension"
                )
            found[path.stem] = path
    return found


def _listing(names: Iterable[str], limit: int = 5) -> str:
    names = sorted(names, key=_natural_key)
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def find_pairs(pairs_dir: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """The pairs of a pairs folder: ``[(name, infrared_path, visible_path)]``, natural order.

    ``pairs_dir`` holds ``ir/`` and ``vis/`` (or ``infrared/`` and ``visible/``) sub-folders;
    images are paired by file name without extension.

    Raises
    ------
    FileNotFoundError
        ``pairs_dir`` does not exist.
    ValueError
        A sub-folder is missing or doubled, a folder holds no images, names do not match
        (the message lists those found on one side only), or a pair is named ``"mean"``.
    """
    root = Path(pairs_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"pairs folder {str(root)!r} does not exist")
    ir_dir = _subfolder(root, _IR_FOLDERS, "infrared")
    vis_dir = _subfolder(root, _VIS_FOLDERS, "visible")
    ir, vis = _images(ir_dir), _images(vis_dir)
    for folder, found in ((ir_dir, ir), (vis_dir, vis)):
        if not found:
            raise ValueError(
                f"no images ({', '.join(IMAGE_SUFFIXES)}) in {str(folder)!r}; it should hold "
                "one image per pair"
            )
    if set(ir) != set(vis):
        parts = []
        if set(ir) - set(vis):
            parts.append(f"only in {ir_dir.name}/: {_listing(set(ir) - set(vis))}")
        if set(vis) - set(ir):
            parts.append(f"only in {vis_dir.name}/: {_listing(set(vis) - set(ir))}")
        raise ValueError(
            f"the infrared and visible folders of {str(root)!r} hold different names "
            f"({'; '.join(parts)}); pairs are matched by file name without extension"
        )
    if MEAN_PAIR in ir:
        raise ValueError(f"a pair may not be named {MEAN_PAIR!r} (reserved for the mean rows)")
    return [(name, ir[name], vis[name]) for name in sorted(ir, key=_natural_key)]


@dataclass(frozen=True)
class CompareProgress:
    """A step of :func:`iter_compare`: ``step`` of ``total`` done.

    ``action`` is ``"start"`` (step 0, before any work: the inputs were checked),
    ``"fused"`` (the method ran), ``"reused"`` (an earlier run's image was read) or
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


def _settings(method: Method, weights, seed: int) -> dict[str, Any]:
    """What identifies a method's outputs: if any of it changes, they are fused again."""
    chosen = _weights_for(method, weights)
    stamp: dict[str, Any] = {"method": method.name, "package_version": __version__}
    if chosen is not None:
        stamp["weights"] = chosen
        path = Path(chosen).expanduser()
        if path.is_file():
            stat = path.stat()
            stamp["weights"] = str(path.resolve())
            stamp["weights_file"] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if chosen == "random":
            stamp["seed"] = seed
    return stamp


def _read_settings(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fused_suffix(dtype: np.dtype) -> str:
    return ".png" if dtype in (np.uint8, np.uint16) else ".tif"


def _write_atomic(path: Path, image: np.ndarray) -> None:
    """Write to a temporary file, then rename: an interrupted run leaves no partial image."""
    partial = path.with_name(f".partial-{path.name}")
    write_image(partial, image)
    os.replace(partial, path)


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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    total = len(pairs) * len(names) + 1
    step = 0

    # Each method's folder, with outputs reusable only if they were made the same way.
    folders: dict[str, tuple[Path, bool]] = {}
    for name in names:
        folder = out / "fused" / name
        folder.mkdir(parents=True, exist_ok=True)
        stamp = _settings(METHODS[name], weights, seed)
        stamp_path = folder / "settings.json"
        same = _read_settings(stamp_path) == stamp
        if not same:
            # Outputs of other settings must not be taken for this run's, even if this run
            # stops before it has replaced them all: remove them first.
            for old in folder.iterdir():
                if old.is_file() and old.suffix.lower() in IMAGE_SUFFIXES:
                    old.unlink()
            stamp_path.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        folders[name] = (folder, same)

    report = CompareReport(
        rows=[],
        pairs=tuple(pair for pair, _, _ in pairs),
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
            sources = _prepare(read_image(ir_path), read_image(vis_path))
        except ValueError as exc:
            raise ValueError(f"pair {pair!r}: {exc}") from exc
        suffix = _fused_suffix(sources.dtype)
        cells = [sources.infrared, sources.visible]
        for name in names:
            folder, same = folders[name]
            path = folder / f"{pair}{suffix}"
            fused = _reusable(path, sources.infrared.shape, sources.dtype) if same else None
            if fused is None:
                try:
                    unit = _run(METHODS[name], sources, weights, seed, device)
                except ValueError as exc:
                    raise ValueError(f"pair {pair!r}, method {name!r}: {exc}") from exc
                fused = from_unit_range(unit, sources.dtype)
                _write_atomic(path, fused)
                report.fused_count += 1
                action = "fused"
            else:
                report.reused_count += 1
                action = "reused"
            report.fused[(pair, name)] = path
            values = _metrics(sources, fused, metric_names, pair, name)
            rows.append({"pair": pair, "method": name, **values})
            cells.append(_display(fused))
            step += 1
            yield CompareProgress(step, total, pair, name, action)
        grid_rows.append((pair, cells))

    report.rows = rows + _mean_rows(rows, metric_names)
    write_csv(report.rows, report.csv, names=metric_names)
    report.markdown.write_text(
        _report_markdown(report, metric_names, weights, seed, digits), encoding="utf-8"
    )
    grid = grid_image(
        grid_rows, ["infrared", "visible", *names], cell_width=int(cell_width), wrap=grid_columns
    )
    grid.save(report.grid, optimize=True)
    step += 1
    yield CompareProgress(step, total, None, None, "report")
    return report


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
    )
    while True:
        try:
            event = next(runner)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(event)


# --------------------------------------------------------------------------------------------
# Report: Markdown and the picture grid
# --------------------------------------------------------------------------------------------

_ARROWS = {"higher": "↑", "lower": "↓"}


def _format(value: float, digits: int) -> str:
    return str(value) if not math.isfinite(value) else f"{value:.{digits}f}"


def format_means_markdown(rows: Sequence[dict[str, Any]], *, names=None, digits: int = 4) -> str:
    """The mean rows as a Markdown table: one line per method, best value per metric in bold.

    The header gives each metric's direction (``↑`` higher is better, ``↓`` lower is better).
    ``rows`` are rows as :func:`compare` or :func:`napari_resfuse.metrics.metrics_table` return
    them; only those with ``pair == "mean"`` are shown.
    """
    means = [row for row in rows if row["pair"] == MEAN_PAIR]
    if not means:
        raise ValueError("rows: no mean rows (pair == 'mean') to show")
    columns = list(names) if names is not None else [k for k in means[0] if k in DIRECTIONS]
    best = best_cells(means, names=columns)
    header = ["method", *(f"{n} {_ARROWS[DIRECTIONS[n]]}" for n in columns)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(columns)) + "|",
    ]
    for index, row in enumerate(means):
        cells = [str(row["method"])]
        for name in columns:
            text = _format(float(row[name]), digits)
            cells.append(f"**{text}**" if (index, name) in best else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _weights_text(weights) -> str:
    if isinstance(weights, Mapping):
        return ", ".join(f"{k}={v}" for k, v in weights.items()) + " (others: imagenet)"
    return str(weights)


def _report_markdown(report: CompareReport, names, weights, seed: int, digits: int) -> str:
    networks = [m for m in report.methods if METHODS[m].backbone is not None]
    random_weights = any(_weights_for(METHODS[m], weights) == "random" for m in networks)
    lines = [
        "# Fusion comparison",
        "",
        f"{len(report.pairs)} pair(s), {len(report.methods)} method(s); metrics of "
        "napari-resfuse " + __version__ + ". Best value per metric in bold; ↑ higher is "
        "better, ↓ lower is better.",
    ]
    if networks:
        lines += ["", f"Network weights: {_weights_text(weights)}."]
    if random_weights:
        lines += [
            "",
            f"**Seeded random weights (seed {seed}) stand in for the pretrained networks: "
            "the network methods' numbers are for testing the pipeline only and say nothing "
            "about the methods.**",
        ]
    lines += [
        "",
        f"## Mean over {len(report.pairs)} pair(s)",
        "",
        format_means_markdown(report.rows, names=names, digits=digits).rstrip("\n"),
        "",
        "## Every pair",
        "",
        format_markdown(
            [r for r in report.rows if r["pair"] != MEAN_PAIR], names=names, digits=digits
        ).rstrip("\n"),
        "",
        "## Methods",
        "",
        *(f"- `{m}`: {METHODS[m].description}" for m in report.methods),
        "",
    ]
    return "\n".join(lines)


def _display(image: np.ndarray) -> np.ndarray:
    """An image as float ``[0, 1]`` for the grid (integers by their type's range)."""
    if image.dtype.kind in "ui":
        return image.astype(np.float64) / np.iinfo(image.dtype).max
    return np.clip(image.astype(np.float64), 0.0, 1.0)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def grid_image(
    rows: Sequence[tuple[str, Sequence[np.ndarray]]],
    columns: Sequence[str],
    *,
    cell_width: int = 160,
    wrap: int | None = None,
    font_size: int = 13,
):
    """A labelled picture grid: one row per pair, one column per image.

    Parameters
    ----------
    rows : sequence of (str, sequence of ndarray)
        Each row's title and its images: 2-D float ``[0, 1]`` arrays, one per column.
    columns : sequence of str
        The column titles.
    cell_width : int
        Width of each image; wider images are shrunk to it (never enlarged).
    wrap : int, optional
        At most this many images per line: a longer row continues on the next lines, each line
        under the titles of its images (for a narrow picture of many methods). Default: no
        wrapping, one line per row under one header.
    font_size : int
        Text size of the titles.

    Returns
    -------
    PIL.Image.Image
        A greyscale (``"L"``) image: column titles on top (above every line when wrapped), each
        row under its title.
    """
    from PIL import Image, ImageDraw

    if not rows:
        raise ValueError("rows: nothing to draw")
    per_line = len(columns) if wrap is None else int(wrap)
    if per_line < 1:
        raise ValueError(f"wrap must be a positive integer or None; got {wrap!r}")
    font = _font(font_size)
    pad = 4
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    line = max(text_size(t)[1] for t in [*columns, *(r[0] for r in rows)]) + 2 * pad
    scaled_rows = []
    for title, images in rows:
        if len(images) != len(columns):
            raise ValueError(f"row {title!r} has {len(images)} images for {len(columns)} columns")
        height, width = images[0].shape
        scale = min(1.0, cell_width / width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        cells = []
        for image in images:
            pil = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), "L")
            cells.append(pil.resize(size, Image.BILINEAR, reducing_gap=2.0) if scale < 1 else pil)
        scaled_rows.append((title, cells, size))
    col_width = max(size[0] for _, _, size in scaled_rows)
    col_width = max(col_width, *(min(text_size(c)[0], cell_width) for c in columns))
    starts = range(0, len(columns), per_line)
    wrapped = len(starts) > 1
    canvas_w = min(per_line, len(columns)) * (col_width + pad) + pad
    lines_per_row = len(starts) * (2 if wrapped else 1)  # (captions +) images per chunk
    canvas_h = (0 if wrapped else line) + sum(
        line + len(starts) * (size[1] + pad) + (lines_per_row - len(starts)) * line
        for _, _, size in scaled_rows
    )
    canvas = Image.new("L", (canvas_w, canvas_h), 255)
    draw = ImageDraw.Draw(canvas)

    def captions(y: int, first: int) -> None:
        for k, title in enumerate(columns[first : first + per_line]):
            label = _clip_text(title, col_width, text_size)
            draw.text((pad + k * (col_width + pad), y + pad), label, fill=0, font=font)

    y = 0
    if not wrapped:
        captions(0, 0)
        y = line
    for title, cells, size in scaled_rows:
        draw.text((pad, y + pad), title, fill=0, font=font)
        y += line
        for first in starts:
            if wrapped:
                captions(y, first)
                y += line
            for k, cell in enumerate(cells[first : first + per_line]):
                canvas.paste(cell, (pad + k * (col_width + pad), y))
            y += size[1] + pad
    return canvas


def _clip_text(text: str, width: int, measure) -> str:
    """Shorten ``text`` with an ellipsis until it fits ``width`` pixels."""
    if measure(text)[0] <= width:
        return text
    while len(text) > 1 and measure(text + "…")[0] > width:
        text = text[:-1]
    return text + "…"
