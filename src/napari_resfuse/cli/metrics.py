"""``resfuse metrics``: fusion quality metrics of fused images, as a table and CSV/JSON files.

Two modes, chosen by what ``--ir`` and ``--vis`` name:

* files: one infrared/visible pair and one or more fused images of it
  (``resfuse metrics --ir IR.png --vis VIS.png --fused a.png b.png``); each fused image is a
  method, named after its file;
* folders: the pairs of the infrared and visible folders, found by
  :func:`napari_resfuse.io.find_pairs` like every command (matched by file name without
  extension, natural order), and one or more fused folders (``--fused out/cbf out/ours``), each
  fused folder a method named after the folder; a progress bar runs over the images.

The table printed holds one column per method (the means over all pairs in folder mode, with
``--per-pair`` each pair too); ``--csv``, ``--json`` and ``--markdown`` save every row, one per
pair and method plus each method's mean.

In folder mode an item (a pair and a method) that cannot be measured (an image missing from a
fused folder or unreadable, shapes that differ, a metric undefined on it) does not stop the run:
its missing values are NaN, the means use the other pairs, the failed items are listed at the
end (``resfuse metrics: failed PAIR / METHOD: reason``, the shared report of every command) and
marked in the CSV's ``error`` column and the JSON's ``failed`` list; the exit code is 1. An
infrared or visible image without a partner is reported the same way as under ``resfuse fuse``
(``failed ir/c.png: no visible image named 'c' ...``) and gets NaN rows with that error in the
CSV/JSON, so nothing is dropped silently. Usage and input errors found before any metric runs
(a missing folder, folders without a single pair in common) exit with 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from napari_resfuse.io import IMAGE_SUFFIXES, find_pairs, image_files, natural_key, read_image
from napari_resfuse.metrics.table import (
    ERROR_KEY,
    MEAN_PAIR,
    METRIC_NAMES,
    failed_rows,
    format_text,
    metrics_table,
    write_csv,
    write_json,
    write_markdown,
)

from . import report_failures

__all__ = ["register", "run"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``metrics`` sub-command to ``resfuse``'s sub-parsers and return its parser."""
    parser = subparsers.add_parser(
        "metrics",
        help="compute fusion quality metrics (EN, SD, SF, AG, MI, Qabf, FMI, Nabf, SCD, SSIM, ...)",
        description=(
            "Compute fusion quality metrics of fused images against their infrared and visible\n"
            "sources. Give files (one pair, one or more fused images: one per method) or\n"
            "folders (pairs matched by file name without extension; one fused folder per\n"
            "method). The table shows each metric's better direction and marks the best value.\n"
            "In folder mode an item that cannot be measured is listed at the end and the run\n"
            "goes on. Exit codes: 0 all measured, 1 some items failed, 2 usage or input error."
        ),
        epilog=(
            "examples:\n"
            "  resfuse metrics --ir IR1.png --vis VIS1.png --fused cbf1.png ours1.png\n"
            "  resfuse metrics --ir tno/ir --vis tno/vis --fused out/cbf out/ours "
            "--csv table.csv --json table.json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--ir", required=True, type=Path, help="infrared image, or folder of infrared images"
    )
    parser.add_argument(
        "--vis", required=True, type=Path, help="visible image, or folder of visible images"
    )
    parser.add_argument(
        "--fused",
        required=True,
        nargs="+",
        type=Path,
        metavar="PATH",
        help="fused image(s) of the pair, or folder(s) of fused images: one per method",
    )
    parser.add_argument(
        "--names",
        nargs="+",
        choices=METRIC_NAMES,
        metavar="NAME",
        help=f"metrics to compute (default: all): {', '.join(METRIC_NAMES)}",
    )
    parser.add_argument("--csv", type=Path, metavar="PATH", help="write every row to a CSV file")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every row to a JSON file")
    parser.add_argument(
        "--markdown", type=Path, metavar="PATH", help="write every row to a Markdown table"
    )
    parser.add_argument(
        "--per-pair",
        action="store_true",
        help="in folder mode, print each pair's table before the means",
    )
    parser.add_argument(
        "--digits", type=int, default=4, help="decimal places in the printed table (default: 4)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``resfuse metrics`` with parsed arguments; return the exit code."""
    for option in ("csv", "json", "markdown"):
        path = getattr(args, option)
        if path is not None and not path.resolve().parent.is_dir():
            raise FileNotFoundError(f"--{option}: folder {path.parent} does not exist")
    if args.digits < 0:
        raise ValueError(f"--digits must be 0 or more, got {args.digits}")

    folders = args.ir.is_dir() or args.vis.is_dir()
    unmatched: dict[str, str] = {}
    if folders:
        pairs, methods, jobs, unmatched = _folder_jobs(args.ir, args.vis, args.fused)
    else:
        pairs, methods, jobs = _file_jobs(args.ir, args.vis, args.fused)

    if len(pairs) > 1:
        from tqdm import tqdm

        jobs = tqdm(
            jobs,
            total=len(pairs) * len(methods),
            desc="metrics",
            unit="image",
            disable=args.quiet,
            file=sys.stderr,
        )
    rows = metrics_table(jobs, names=args.names, on_error="record" if folders else "raise")
    failed = {f"{row['pair']} / {row['method']}": row[ERROR_KEY] for row in failed_rows(rows)}
    rows = _with_unmatched_rows(rows, unmatched, methods)

    if len(pairs) == 1:
        print(f"Pair {pairs[0]} ({args.ir}, {args.vis})")
        print(format_text(rows, pair=pairs[0], digits=args.digits))
    else:
        if args.per_pair:
            for pair in pairs:
                print(f"Pair {pair}")
                print(format_text(rows, pair=pair, digits=args.digits))
                print()
        print(f"Mean over {len(pairs)} pairs")
        print(format_text(rows, pair=MEAN_PAIR, digits=args.digits))
    if len(methods) > 1:
        print("(* best value of each metric)")
    notes = []
    if failed:
        total = len(pairs) * len(methods)
        notes.append(f"{len(failed)} of {total} items failed (NaN; the means use the others)")
    if unmatched:
        notes.append(f"{len(unmatched)} image{'s' * (len(unmatched) != 1)} without a partner")
    if notes:
        print(f"{'; '.join(notes)}: listed on stderr")

    for option, writer in (("csv", write_csv), ("json", write_json), ("markdown", write_markdown)):
        path = getattr(args, option)
        if path is not None:
            writer(rows, path)
            print(f"wrote {path}", file=sys.stderr)
    return report_failures("metrics", {**failed, **unmatched})


def _with_unmatched_rows(rows, unmatched: dict[str, str], methods: list[str]) -> list:
    """The item rows plus one NaN row per method for each image without a partner (its error
    under ``ERROR_KEY``, so the CSV/JSON list it too), in natural order of the pair names, then
    the mean rows (which NaN does not change)."""
    if not unmatched:
        return rows
    items = [row for row in rows if row["pair"] != MEAN_PAIR]
    means = [row for row in rows if row["pair"] == MEAN_PAIR]
    names = [key for key in items[0] if key not in ("pair", "method", ERROR_KEY)]
    for item, error in unmatched.items():
        pair = Path(item).stem
        for method in methods:
            items.append(
                {"pair": pair, "method": method, **dict.fromkeys(names, math.nan), ERROR_KEY: error}
            )
    items.sort(key=lambda row: natural_key(row["pair"]))  # stable: methods keep their order
    return items + means


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------


def _read_image(path: Path, option: str) -> np.ndarray:
    """Read one image with :func:`napari_resfuse.io.read_image`; errors name the option."""
    if not path.is_file():
        raise FileNotFoundError(f"{option}: no such file: {path}")
    try:
        return read_image(path)
    except ValueError as exc:  # keep the message to one line: the reader's first line
        reason = str(exc.__cause__ or exc).strip().splitlines()
        detail = reason[0] if reason else type(exc).__name__
        raise ValueError(f"{option}: cannot read {path} as an image ({detail})") from exc


def _read_or_error(path: Path, option: str) -> np.ndarray | Exception:
    """:func:`_read_image`, or the error it raised (for folder mode, which goes on)."""
    try:
        return _read_image(path, option)
    except (ValueError, OSError) as exc:
        return exc


def _method_names(paths: list[Path], *, folders: bool) -> list[str]:
    """Name each fused input by its file stem (folder name), or its path if those repeat."""
    names = [(path.resolve().name or str(path)) if folders else path.stem for path in paths]
    if len(set(names)) < len(names):
        names = [str(path) for path in paths]
    if len(set(names)) < len(names):
        raise ValueError("--fused: the same path is given twice")
    return names


def _file_jobs(ir: Path, vis: Path, fused: list[Path]):
    for option, path in (("--ir", ir), ("--vis", vis), *(("--fused", p) for p in fused)):
        if path.is_dir():
            raise ValueError(
                f"{option}: {path} is a folder; give --ir, --vis and --fused all as files or "
                "all as folders"
            )
        if not path.is_file():
            raise FileNotFoundError(f"{option}: no such file: {path}")
    methods = _method_names(fused, folders=False)
    pair = ir.stem

    def jobs() -> Iterator[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]]:
        infrared = _read_image(ir, "--ir")
        visible = _read_image(vis, "--vis")
        for method, path in zip(methods, fused, strict=True):
            yield pair, method, infrared, visible, _read_image(path, "--fused")

    return [pair], methods, jobs()


def _check_folder(path: Path, option: str) -> None:
    if path.is_dir():
        return
    if path.exists():
        raise ValueError(
            f"{option}: {path} is a file; give --ir, --vis and --fused all as files or all as "
            "folders"
        )
    raise FileNotFoundError(f"{option}: no such folder: {path}")


def _folder_jobs(ir: Path, vis: Path, fused: list[Path]):
    """Every (pair, method) of the folders, the pairs found by :func:`io.find_pairs`.

    Returns the pair names, the method names, the jobs for :func:`metrics_table` and the
    images without a partner as failed items (:meth:`Pairs.unmatched_items`). A fused image
    missing for a pair is a failed item (its error is handed on in place of the image),
    reported at the end like an unreadable image; only folders without a single pair in
    common are an input error.
    """
    for option, path in (("--ir", ir), ("--vis", vis), *(("--fused", p) for p in fused)):
        _check_folder(path, option)
    found = find_pairs(ir, vis)
    fused_files = []
    for folder in fused:
        try:
            files = image_files(folder)
        except ValueError as exc:
            raise ValueError(f"--fused: {exc}") from exc
        if not files:
            raise ValueError(f"--fused: no images ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}")
        fused_files.append(files)
    methods = _method_names(fused, folders=True)

    def fused_image(files: dict[str, Path], pair: str, folder: Path):
        if pair not in files:
            return ValueError(
                f"--fused {folder}: no fused image named {pair!r} (pairs are matched by file "
                "name without extension)"
            )
        return _read_or_error(files[pair], "--fused")

    def jobs() -> Iterator[tuple[str, str, object, object, object]]:
        # A read error is handed on in place of the image: metrics_table records the item as
        # failed and the run goes on.
        for pair, ir_path, vis_path in found:
            infrared = _read_or_error(ir_path, "--ir")
            visible = _read_or_error(vis_path, "--vis")
            for method, folder, files in zip(methods, fused, fused_files, strict=True):
                yield pair, method, infrared, visible, fused_image(files, pair, folder)

    return found.names, methods, jobs(), found.unmatched_items()
