"""The report of a comparison: the Markdown tables and the labelled picture grid."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import __version__
from .compare_methods import METHODS, _weights_for
from .metrics.table import DIRECTIONS, MEAN_PAIR, best_cells, format_markdown

__all__ = ["format_means_markdown", "grid_image"]

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


def _report_markdown(report, names, weights, seed: int, digits: int) -> str:
    """metrics.md of a :class:`napari_resfuse.compare.CompareReport`."""
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
    ]
    if not report.rows:
        lines += ["Nothing was compared: every pair failed (see below).", ""]
    else:
        lines += [
            format_means_markdown(report.rows, names=names, digits=digits).rstrip("\n"),
            "",
            "## Every pair",
            "",
            format_markdown(
                [r for r in report.rows if r["pair"] != MEAN_PAIR], names=names, digits=digits
            ).rstrip("\n"),
            "",
        ]
    lines += [
        "## Methods",
        "",
        *(f"- `{m}`: {METHODS[m].description}" for m in report.methods),
        "",
    ]
    if report.failed:
        lines += [
            f"## Failed ({len(report.failed)})",
            "",
            *(f"- `{name}`: {error}" for name, error in report.failed.items()),
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
