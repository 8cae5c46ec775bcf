"""``resfuse compare``: fuse a folder of pairs with several methods and write a report.

``PAIRS_DIR`` holds an infrared and a visible sub-folder (``ir/`` and ``vis/``, ``infrared/`` and
``visible/``, ...), paired by :func:`napari_resfuse.io.find_pairs` like every command.
``REPORT_DIR`` receives
``metrics.csv``, ``metrics.md``, ``grid.png`` and the fused images (``fused/<method>/``), which a
later run with the same settings reuses. See :mod:`napari_resfuse.compare`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..compare import DEFAULT_METHODS, METHODS, CompareProgress, iter_compare, resolve_methods
from ..method.fuse import run_with_progress
from ..metrics.table import MEAN_PAIR, METRIC_NAMES, format_text
from ..options import BACKBONES
from . import report_failures
from .register import add_registration_options, registration_kwargs

__all__ = ["parse_weights", "register", "run"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``compare`` sub-command to ``resfuse``'s sub-parsers and return its parser."""
    parser = subparsers.add_parser(
        "compare",
        help="compare fusion methods on a folder of pairs: fused images, metrics, a report",
        description=(
            "Fuse every pair of PAIRS_DIR with every method, compute the fusion metrics and\n"
            "write REPORT_DIR/metrics.csv, metrics.md (means, best value per metric marked)\n"
            "and grid.png (rows = pairs; columns = infrared, visible, methods). Fused images\n"
            "are kept in REPORT_DIR/fused/<method>/ and reused by a later run with the same\n"
            "settings, so an interrupted comparison resumes.\n\n"
            "PAIRS_DIR layout: an infrared and a visible sub-folder (ir/ and vis/,\n"
            "infrared/ and visible/, lwir/ and rgb/, thermal/ and optical/, any case),\n"
            "paired by file name without extension, as every resfuse command pairs:\n"
            "  PAIRS_DIR/ir/IR1.png  <->  PAIRS_DIR/vis/IR1.png\n"
            "A pair or method that fails is listed at the end (exit code 1); the rest is\n"
            "compared."
        ),
        epilog=(
            "methods (--methods, comma-separated; 'all' for every one):\n"
            + "".join(f"  {name:24s}{m.description}\n" for name, m in METHODS.items())
            + "\nexamples:\n"
            "  resfuse compare tno --out report\n"
            "  resfuse compare tno --methods resfuse,resfuse-l2,gff,cbf,wls --out report\n"
            "  resfuse compare tno --methods all --weights random --out report   # no download\n"
            "  resfuse compare tno --methods resfuse,vgg19_li2018 --out report \\\n"
            "      --weights resnet152=r152.pth,vgg19=vgg19.pth\n"
            "  resfuse compare rig_pairs --out report --registration rig.json   # unaligned pairs"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "pairs_dir", metavar="PAIRS_DIR", type=Path, help="folder with ir/ and vis/ sub-folders"
    )
    parser.add_argument(
        "--out",
        "-o",
        required=True,
        type=Path,
        metavar="REPORT_DIR",
        help="report folder (created; fused images in it are reused)",
    )
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma-separated method names, or 'all' (default: %(default)s)",
    )
    parser.add_argument(
        "--weights",
        default="imagenet",
        help="network weights: 'imagenet' (torchvision's, downloaded on first use), 'random' "
        "(seeded, testing only) or a state_dict file, for every network method; or "
        "BACKBONE=VALUE[,BACKBONE=VALUE...] per backbone (resnet152, resnet101, resnet50, "
        "vgg19; others: imagenet) (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of 'random' weights")
    parser.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)"
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        choices=METRIC_NAMES,
        metavar="NAME",
        help=f"metrics to compute (default: all): {', '.join(METRIC_NAMES)}",
    )
    parser.add_argument(
        "--cell-width", type=int, default=160, help="width of each image in grid.png (px)"
    )
    parser.add_argument(
        "--grid-columns",
        type=int,
        metavar="N",
        help="at most N images per line of grid.png; longer rows wrap (default: no wrapping)",
    )
    parser.add_argument(
        "--digits", type=int, default=4, help="decimal places in the tables (default: 4)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_registration_options(parser)
    parser.set_defaults(func=run)
    return parser


def parse_weights(text: str) -> str | dict[str, str]:
    """``--weights``: one setting, or ``BACKBONE=VALUE`` items separated by commas."""
    if "=" not in text:
        return text
    mapping: dict[str, str] = {}
    for item in text.split(","):
        backbone, sep, value = item.partition("=")
        backbone, value = backbone.strip(), value.strip()
        if not sep or backbone not in BACKBONES or not value:
            raise ValueError(
                f"--weights: {item!r} is not BACKBONE=VALUE with BACKBONE one of "
                f"{', '.join(BACKBONES)}"
            )
        mapping[backbone] = value
    return mapping


def run(args: argparse.Namespace) -> int:
    """Run ``resfuse compare`` with parsed arguments; return the exit code."""
    from tqdm import tqdm

    if args.digits < 0:
        raise ValueError(f"--digits must be 0 or more, got {args.digits}")
    methods = resolve_methods(args.methods)
    weights = parse_weights(args.weights)
    networks = [m for m in methods if METHODS[m].backbone is not None]
    if networks and "random" in (weights.values() if isinstance(weights, dict) else [weights]):
        print(
            "resfuse compare: seeded random weights stand in for pretrained networks: the "
            "network methods' results are for testing only",
            file=sys.stderr,
        )
    runner = iter_compare(
        args.pairs_dir,
        args.out,
        methods,
        weights=weights,
        seed=args.seed,
        device=args.device,
        metrics=args.metrics,
        cell_width=args.cell_width,
        grid_columns=args.grid_columns,
        digits=args.digits,
        **registration_kwargs(args),
    )
    bar = None

    def show(event: CompareProgress) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(
                total=event.total, desc="compare", unit="step", disable=args.quiet, file=sys.stderr
            )
        bar.update(event.step - bar.n)
        if event.pair is not None:
            bar.set_postfix_str(f"{event.pair} {event.method} ({event.action})")

    try:
        report = run_with_progress(runner, show)
    finally:
        if bar is not None:
            bar.close()

    if report.rows:
        print(f"Mean over {len(report.pairs)} pair(s)")
        print(format_text(report.rows, pair=MEAN_PAIR, names=args.metrics, digits=args.digits))
        if len(report.methods) > 1:
            print("(* best value of each metric)")
    print(
        f"fused {report.fused_count} image(s), reused {report.reused_count}; wrote "
        f"{report.csv}, {report.markdown}" + (f", {report.grid}" if report.grid.is_file() else ""),
        file=sys.stderr,
    )
    return report_failures("compare", report.failed)
