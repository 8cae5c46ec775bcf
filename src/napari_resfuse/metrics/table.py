"""Metric values of one triple, and tables of metrics over many image pairs and fusion methods.

The names, functions and directions come from :mod:`napari_resfuse.metrics.registry`;
:func:`compute_metrics` evaluates them on one triple, and
:func:`metrics_table` evaluates them over pairs × methods and adds the mean row of each method.
The rows are plain dicts; :func:`write_csv`, :func:`write_json` and :func:`write_markdown` save
them, :func:`format_text` and :func:`format_markdown` render them with the best value per metric
marked (:func:`best_cells`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ._validate import unit_triple
from .registry import DIRECTIONS, METRIC_NAMES, METRICS, get_metric, resolve_names

__all__ = [
    "DIRECTIONS",
    "ERROR_KEY",
    "MEAN_PAIR",
    "METRICS",
    "METRIC_NAMES",
    "best_cells",
    "compute_metrics",
    "failed_rows",
    "format_markdown",
    "format_text",
    "iter_metrics",
    "metrics_table",
    "write_csv",
    "write_json",
    "write_markdown",
]

Row = dict[str, object]

#: The ``pair`` label of the rows that hold each method's mean over all pairs.
MEAN_PAIR = "mean"

#: The key (and CSV column) holding why an entry failed, on failed rows only.
ERROR_KEY = "error"

_KEY_COLUMNS = ("pair", "method")


def _resolve_names(names) -> list[str]:
    return list(resolve_names(names))


def compute_metrics(infrared, visible, fused, names=None) -> dict[str, float]:
    """Compute fusion quality metrics of one fused image.

    Parameters
    ----------
    infrared, visible, fused : array_like
        The infrared and visible source images and the fused image: 2-D grayscale (or RGB,
        converted to luminance with MATLAB's ``rgb2gray`` weights), all of one shape. ``uint8``
        is divided by 255 (MATLAB's ``im2double``, as the reference code reads its 8-bit
        images), every integer type by its largest value (``uint16`` by 65535); floats are
        taken as given and must lie in ``[0, 1]``. The rule never depends on the content, so
        the same pixels as ``uint8``, ``float`` ÷ 255 or ``uint16`` × 257 give the same values.
    names : str or iterable of str, optional
        The metrics to compute (see :data:`METRIC_NAMES`); all of them by default.

    Returns
    -------
    dict of str to float
        Metric name -> value, in the order of :data:`METRIC_NAMES` whatever the order of
        ``names``. :data:`DIRECTIONS` says which way is better.

    Raises
    ------
    ValueError
        If a name is unknown, or an image is empty, not 2-D/RGB, holds NaN or inf, is a float
        image outside ``[0, 1]`` or an integer image with negative values, or differs in shape
        from the others; also where a metric is undefined (e.g. ``cc`` of a constant
        image), with a message naming the metric.

    Notes
    -----
    Each value is that of the function of the same name (``METRICS[name](infrared, visible,
    fused)``; see :data:`~napari_resfuse.metrics.REGISTRY`); their docstrings give formula,
    constants and source. The inputs are validated once per call, not once per metric.
    ``entropy`` is that of the fused image.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ir, vis = rng.integers(0, 256, (2, 64, 64), dtype=np.uint8)
    >>> fused = ((ir.astype(int) + vis) // 2).astype(np.uint8)
    >>> values = compute_metrics(ir, vis, fused, names=["std", "cc"])
    >>> list(values)
    ['std', 'cc']
    """
    selected = resolve_names(names)
    # Validate once, before any slow metric runs; the metrics' cores then skip their own checks.
    images = unit_triple(infrared, visible, fused)
    return {name: float(get_metric(name).core(*images)) for name in selected}


def iter_metrics(infrared, visible, fused, names=None) -> Iterator[tuple[str, float, str | None]]:
    """Compute metrics one at a time, going on past those undefined on this triple.

    The inputs are validated once, before the first metric (as by :func:`compute_metrics`);
    then each metric yields ``(name, value, None)``, or ``(name, nan, message)`` where it is
    undefined (e.g. ``scd`` when the fused image equals a source). For progress displays that
    show each value as it arrives.

    Parameters
    ----------
    infrared, visible, fused : array_like
        As for :func:`compute_metrics`.
    names : str or iterable of str, optional
        The metrics, in :data:`METRIC_NAMES` order whatever the order given; all by default.

    Yields
    ------
    (str, float, str or None)
        The metric's name, its value (NaN if undefined) and the reason it is undefined.

    Raises
    ------
    ValueError
        On the first ``next()``: an unknown name, or invalid images (as :func:`compute_metrics`).
    """
    selected = resolve_names(names)
    images = unit_triple(infrared, visible, fused)
    for name in selected:
        try:
            yield name, float(get_metric(name).core(*images)), None
        except ValueError as exc:
            reason = _one_line(exc)
            yield name, math.nan, reason if reason.startswith(name) else f"{name}: {reason}"


def metrics_table(
    triples: Iterable[tuple[str, str, object, object, object]],
    *,
    names=None,
    on_error: str = "raise",
) -> list[Row]:
    """Compute metrics over many image pairs and fusion methods, with each method's mean.

    Parameters
    ----------
    triples : iterable of (pair, method, infrared, visible, fused)
        One entry per fused image: the pair's name, the method's name and the three images (as
        for :func:`compute_metrics`). It may be a generator that reads images lazily, and may be
        wrapped in a progress bar (``tqdm(triples, total=n)``). With ``on_error="record"`` an
        image may be an exception instance instead (a reader's error), and the entry is
        recorded as failed with its message.
    names : str or iterable of str, optional
        The metrics to compute; all of them by default.
    on_error : {"raise", "record"}
        What a failing entry (an invalid image, an undefined metric) does: ``"raise"`` stops
        with a ValueError; ``"record"`` goes on, sets the metrics that could not be computed to
        NaN and puts the reason under the row's :data:`ERROR_KEY` (``"error"``) key.

    Returns
    -------
    list of dict
        One row per entry, in the order given, then one row per method (in order of first
        appearance) with ``pair`` equal to :data:`MEAN_PAIR` and the mean of each metric over
        that method's pairs (over the pairs where it is defined: NaN values are left out, and
        a metric failing on every pair has a NaN mean). Each row is
        ``{"pair": ..., "method": ..., <metric>: float, ...}`` with the metrics in
        :data:`METRIC_NAMES` order, plus ``"error": str`` on the rows of failed entries.

    Raises
    ------
    ValueError
        If a (pair, method) repeats, a pair is named :data:`MEAN_PAIR`, ``on_error`` is not
        one of the two choices, or (with ``on_error="raise"``) a metric fails on an entry (the
        message then starts with the pair and method).
    """
    if on_error not in ("raise", "record"):
        raise ValueError(f"on_error must be 'raise' or 'record', got {on_error!r}")
    selected = _resolve_names(names)
    rows: list[Row] = []
    seen: set[tuple[str, str]] = set()
    for pair, method, infrared, visible, fused in triples:
        pair, method = str(pair), str(method)
        if pair == MEAN_PAIR:
            raise ValueError(f"pair name {MEAN_PAIR!r} is reserved for the mean rows")
        if (pair, method) in seen:
            raise ValueError(f"pair {pair!r} with method {method!r} appears twice")
        seen.add((pair, method))
        if on_error == "record":
            values, error = _recorded_metrics(infrared, visible, fused, selected)
            rows.append({"pair": pair, "method": method, **values})
            if error:
                rows[-1][ERROR_KEY] = error
            continue
        try:
            values = compute_metrics(infrared, visible, fused, names=selected)
        except ValueError as exc:
            raise ValueError(f"pair {pair!r}, method {method!r}: {exc}") from exc
        rows.append({"pair": pair, "method": method, **values})
    return rows + _mean_rows(rows, selected)


def _recorded_metrics(infrared, visible, fused, names) -> tuple[dict[str, float], str]:
    """Every metric of one entry, NaN where it fails, and the reasons joined by ``"; "``."""
    for image in (infrared, visible, fused):
        if isinstance(image, BaseException):
            return dict.fromkeys(names, math.nan), _one_line(image)
    values: dict[str, float] = {}
    reasons = []
    try:
        for name, value, reason in iter_metrics(infrared, visible, fused, names):
            values[name] = value
            if reason:
                reasons.append(reason)
    except ValueError as exc:  # invalid images: nothing computed
        return dict.fromkeys(names, math.nan), _one_line(exc)
    return values, "; ".join(reasons)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def failed_rows(rows: Sequence[Row]) -> list[Row]:
    """The rows of entries that failed (those with an :data:`ERROR_KEY` field), in order."""
    return [row for row in rows if row.get(ERROR_KEY)]


def _mean_rows(rows: Sequence[Row], names: Sequence[str]) -> list[Row]:
    methods: dict[str, list[Row]] = {}
    for row in rows:
        methods.setdefault(str(row["method"]), []).append(row)
    return [
        {"pair": MEAN_PAIR, "method": method, **{name: _mean(group, name) for name in names}}
        for method, group in methods.items()
    ]


def _mean(group: Sequence[Row], name: str) -> float:
    """Mean of one metric over rows, leaving out NaN (metrics that failed on a row)."""
    values = [float(row[name]) for row in group if not math.isnan(float(row[name]))]
    return float(np.mean(values)) if values else math.nan


def _metric_columns(rows: Sequence[Row], names) -> list[str]:
    if names is not None:
        return _resolve_names(names)
    if not rows:
        return []
    return [key for key in rows[0] if key not in (*_KEY_COLUMNS, ERROR_KEY)]


def best_cells(rows: Sequence[Row], *, names=None) -> set[tuple[int, str]]:
    """Find the best value of each metric among the methods of each pair (and of the means).

    Parameters
    ----------
    rows : sequence of dict
        Rows as :func:`metrics_table` returns them.
    names : iterable of str, optional
        The metric columns to consider; by default those of the first row.

    Returns
    -------
    set of (int, str)
        ``(row index, metric name)`` of every best cell: the largest value for a metric whose
        :data:`DIRECTIONS` entry is ``"higher"``, the smallest for ``"lower"``; ties are all
        marked, NaN never is. Rows are compared within the same ``pair`` (the mean rows form
        their own group), and only where the group holds two or more methods.
    """
    columns = _metric_columns(rows, names)
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(str(row["pair"]), []).append(index)
    best: set[tuple[int, str]] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        for name in columns:
            values = {i: float(rows[i][name]) for i in members if not math.isnan(rows[i][name])}
            if not values:
                continue
            pick = max if DIRECTIONS.get(name, "higher") == "higher" else min
            target = pick(values.values())
            best.update((i, name) for i, value in values.items() if value == target)
    return best


def _format_value(value: float, digits: int) -> str:
    if math.isinf(value) or math.isnan(value):
        return str(value)
    return f"{value:.{digits}f}"


def format_text(rows: Sequence[Row], *, pair: str = MEAN_PAIR, names=None, digits: int = 4) -> str:
    """Render one pair's rows (the means by default) as a plain-text table for a terminal.

    One line per metric, with its direction (``higher`` or ``lower`` is better) and one column
    per method; the best value of each metric is followed by ``*`` when there are two or more
    methods. ASCII only, so that any console can print it.

    Parameters
    ----------
    rows : sequence of dict
        Rows as :func:`metrics_table` returns them.
    pair : str
        The ``pair`` whose rows to show; :data:`MEAN_PAIR` for the means over all pairs.
    names : iterable of str, optional
        The metrics to show; by default those of the rows.
    digits : int
        Decimal places.

    Returns
    -------
    str
        The table, lines joined by newlines, without a trailing newline.

    Raises
    ------
    ValueError
        If no row has this ``pair``.
    """
    columns = _metric_columns(rows, names)
    indices = [i for i, row in enumerate(rows) if row["pair"] == pair]
    if not indices:
        raise ValueError(f"pair: no rows for {pair!r}")
    best = best_cells(rows, names=columns)
    header = ["metric", "better", *(str(rows[i]["method"]) for i in indices)]
    body = []
    for name in columns:
        cells = [name, DIRECTIONS.get(name, "higher")]
        for i in indices:
            mark = "*" if (i, name) in best else " "
            cells.append(_format_value(float(rows[i][name]), digits) + mark)
        body.append(cells)
    widths = [max(len(line[k]) for line in [header, *body]) for k in range(len(header))]

    def render(cells: list[str]) -> str:
        left = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
        right = [cell.rjust(width) for cell, width in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(header), rule, *(render(cells) for cells in body)])


def format_markdown(rows: Sequence[Row], *, names=None, digits: int = 4) -> str:
    """Render rows as a Markdown table: one line per row, best values in bold.

    The header marks each metric's direction with ``↑`` (higher is better) or ``↓`` (lower is
    better). Best values (see :func:`best_cells`) are bold.

    Parameters
    ----------
    rows : sequence of dict
        Rows as :func:`metrics_table` returns them.
    names : iterable of str, optional
        The metrics to show; by default those of the rows.
    digits : int
        Decimal places.

    Returns
    -------
    str
        The table, ending with a newline.
    """
    columns = _metric_columns(rows, names)
    best = best_cells(rows, names=columns)
    arrows = {"higher": "↑", "lower": "↓"}
    header = ["pair", "method", *(f"{n} {arrows[DIRECTIONS.get(n, 'higher')]}" for n in columns)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * len(columns)) + "|",
    ]
    for index, row in enumerate(rows):
        cells = [str(row["pair"]), str(row["method"])]
        for name in columns:
            text = _format_value(float(row[name]), digits)
            cells.append(f"**{text}**" if (index, name) in best else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[Row], path, *, names=None) -> Path:
    """Write rows to a CSV file: columns ``pair, method`` and one per metric, full precision.

    Values are written with Python's shortest round-trip ``repr``; an infinite PSNR is ``inf``,
    a metric that failed ``nan``. When a row failed (see :func:`metrics_table`'s
    ``on_error``), a last column ``error`` holds the reason (empty on the other rows).

    Parameters
    ----------
    rows : sequence of dict
        Rows as :func:`metrics_table` returns them.
    path : str or os.PathLike
        The file to write (overwritten); its folder must exist.
    names : iterable of str, optional
        The metric columns; by default those of the rows.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    columns = _metric_columns(rows, names)
    errors = [ERROR_KEY] if failed_rows(rows) else []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*_KEY_COLUMNS, *columns, *errors])
        for row in rows:
            cells = [row["pair"], row["method"], *(repr(float(row[n])) for n in columns)]
            writer.writerow(cells + [row.get(ERROR_KEY, "") for _ in errors])
    return path


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def write_json(rows: Sequence[Row], path, *, names=None) -> Path:
    """Write rows to a JSON file, with the metric order and directions.

    The file holds ``{"metrics": [names], "directions": {name: "higher" | "lower"},
    "rows": [{"pair": ..., "method": ..., <metric>: value}, ...], "failed": [{"pair": ...,
    "method": ..., "error": ...}, ...]}``; the rows of failed entries also carry their
    ``"error"``. JSON has no infinity or NaN, so a non-finite value (an infinite PSNR of
    identical images, a metric that failed) is written as ``null``.

    Parameters
    ----------
    rows : sequence of dict
        Rows as :func:`metrics_table` returns them.
    path : str or os.PathLike
        The file to write (overwritten); its folder must exist.
    names : iterable of str, optional
        The metrics; by default those of the rows.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    columns = _metric_columns(rows, names)
    document = {
        "metrics": columns,
        "directions": {name: DIRECTIONS.get(name, "higher") for name in columns},
        "rows": [
            {
                "pair": row["pair"],
                "method": row["method"],
                **{name: _json_number(float(row[name])) for name in columns},
                **({ERROR_KEY: row[ERROR_KEY]} if row.get(ERROR_KEY) else {}),
            }
            for row in rows
        ],
        "failed": [
            {"pair": row["pair"], "method": row["method"], ERROR_KEY: row[ERROR_KEY]}
            for row in failed_rows(rows)
        ],
    }
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def write_markdown(rows: Sequence[Row], path, *, names=None, digits: int = 4) -> Path:
    """Write :func:`format_markdown` of the rows to a file (UTF-8) and return its path."""
    path = Path(path)
    path.write_text(format_markdown(rows, names=names, digits=digits), encoding="utf-8")
    return path
