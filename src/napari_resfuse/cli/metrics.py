"""``resfuse metrics``: fusion quality metrics of fused images, as a table and CSV/JSON files.

Two modes, chosen by what ``--ir`` and ``--vis`` name:

* files: one infrared/visible pair and one or more fused images of it
  (``resfuse metrics --ir IR.png --vis VIS.png --fused a.png b.png``); each fused image is a
  method, named after its file;
* folders: pairs matched by file name without extension (natural order) across the infrared
  folder, the visible folder and one or more fused folders (``--fused out/cbf out/ours``),
  each fused folder a method named after the folder; a progress bar runs over the images.

The table printed holds one column per method (the means over all pairs in folder mode, with
``--per-pair`` each pair too); ``--csv``, ``--json`` and ``--markdown`` save every row, one per
pair and method plus each method's mean.

In folder mode an item (a pair and a method) that cannot be measured (an image missing from a
folder or unreadable, shapes that differ, a metric undefined on it) does not stop the run: its
missing values are NaN, the means use the other pairs, the failed items are listed at the end
(and marked in the CSV's ``error`` column and the JSON's ``failed`` list), and the exit code is
1. Usage and input errors found before any metric runs (a missing folder, folders without a
single pair in common) exit with 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from napari_resfuse.io import IMAGE_SUFFIXES, read_image
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
    if folders:
        pairs, methods, jobs = _folder_jobs(args.ir, args.vis, args.fused)
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

    for option, writer in (("csv", write_csv), ("json", write_json), ("markdown", write_markdown)):
        path = getattr(args, option)
        if path is not None:
            writer(rows, path)
            print(f"wrote {path}", file=sys.stderr)
    return _report_failures(rows, len(pairs) * len(methods))


def _report_failures(rows, total: int) -> int:
    """List the failed items on stderr; return the exit code (1 if any item failed)."""
    failed = failed_rows(rows)
    if not failed:
        return 0
    print(
        f"{len(failed)} of {total} items failed (NaN in the table; the means use the other pairs):",
        file=sys.stderr,
    )
    for row in failed:
        print(f"  pair {row['pair']}, method {row['method']}: {row[ERROR_KEY]}", file=sys.stderr)
    return 1


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


def _natural_key(text: str) -> list:
    """Sort key that orders 'IR2' before 'IR10' (letter case ignored)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _images_by_stem(folder: Path, option: str) -> dict[str, Path]:
    """The images of a folder by name without extension (hidden files skipped)."""
    if not folder.is_dir():
        if folder.exists():
            raise ValueError(
                f"{option}: {folder} is a file; give --ir, --vis and --fused all as files or "
                "all as folders"
            )
        raise FileNotFoundError(f"{option}: no such folder: {folder}")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.is_file():
            if path.stem in found:
                raise ValueError(
                    f"{option}: {found[path.stem].name} and {path.name} in {folder} have the same "
                    "name without extension, so either could pair; keep one"
                )
            found[path.stem] = path
    if not found:
        raise ValueError(f"{option}: no images ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}")
    return found


def _folder_jobs(ir: Path, vis: Path, fused: list[Path]):
    """Every (pair, method) of the folders: pairs are the names in --ir or --vis (natural order).

    A name missing from a folder is a failed item (its error is handed on in place of the
    image), reported at the end like an unreadable image; only folders without a single pair
    in common are an input error.
    """
    ir_files = _images_by_stem(ir, "--ir")
    vis_files = _images_by_stem(vis, "--vis")
    fused_files = [_images_by_stem(folder, "--fused") for folder in fused]
    if not set(ir_files) & set(vis_files):
        raise ValueError(
            f"--ir {ir} and --vis {vis} have no file names in common; pairs are matched by file "
            "name without extension"
        )
    pairs = sorted(set(ir_files) | set(vis_files), key=_natural_key)
    methods = _method_names(fused, folders=True)

    def source(files: dict[str, Path], pair: str, option: str, role: str, where: str = ""):
        if pair not in files:
            return ValueError(
                f"{option}{where}: no {role} image named {pair!r} (pairs are matched by file "
                "name without extension)"
            )
        return _read_or_error(files[pair], option)

    def jobs() -> Iterator[tuple[str, str, object, object, object]]:
        # A read error is handed on in place of the image: metrics_table records the item as
        # failed and the run goes on.
        for pair in pairs:
            infrared = source(ir_files, pair, "--ir", "infrared")
            visible = source(vis_files, pair, "--vis", "visible")
            for method, folder, files in zip(methods, fused, fused_files, strict=True):
                fused_image = source(files, pair, "--fused", "fused", f" {folder}")
                yield pair, method, infrared, visible, fused_image

    return pairs, methods, jobs()
