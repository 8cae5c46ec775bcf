"""``resfuse batch``: fuse folders of pairs or long stacks on a Dask cluster (local or remote)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .fuse import add_fusion_options, options_from_args
from .register import add_registration_options, registration_kwargs

_EPILOG = """\
examples:
  resfuse batch pairs/ --out fused/                  # pairs/infrared/*.png + pairs/visible/*.png
  resfuse batch ir/ vis/ --out fused/ --workers 4    # four local worker processes
  resfuse batch ir.mp4 vis.mp4 --out fused.zarr      # every frame of two videos, into zarr
  resfuse batch ir/ vis/ --out fused/ --scheduler tcp://scheduler-host:8786
  resfuse batch ir/ vis/ --out fused/ --registration rig.json   # one rig for every pair

A second run skips what is already written with the same parameters (--overwrite redoes it,
deleting only what resfuse batch wrote). OUT may not be an input. With --scheduler ADDRESS,
every worker must see INPUT and OUT at the same paths (shared disk).
exit codes: 0 all done; 1 some pairs or frame blocks failed (listed); 2 usage or input error.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "batch",
        help="fuse folders of pairs or long stacks on a Dask cluster (resumable)",
        description="Fuse every pair of two folders (matched by file name) or every frame of "
        "two stacks (multi-page TIFF, zarr, video) on Dask workers, which write the outputs "
        "straight into OUT: one image per pair as 'resfuse fuse' writes it, or the chunks of a "
        "zarr store for stacks.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "input",
        type=Path,
        help="infrared folder or stack; or one folder holding 'infrared' and 'visible' folders",
    )
    p.add_argument("visible", type=Path, nargs="?", help="visible folder or stack")
    p.add_argument(
        "-o", "--out", type=Path, required=True, help="output folder (pairs) or zarr store (stacks)"
    )
    g = p.add_argument_group("Dask")
    g.add_argument(
        "--scheduler",
        default="processes",
        metavar="processes|threads|ADDRESS",
        help="a local cluster of worker processes (default) or of threads in this process, or "
        "the address of a running Dask scheduler (tcp://host:8786)",
    )
    g.add_argument(
        "--workers",
        type=int,
        help="local workers (processes or threads); default: CPU cores, or GPUs when present",
    )
    g.add_argument(
        "--torch-threads",
        type=int,
        help="torch threads per worker process (default: CPU cores / local workers)",
    )
    g.add_argument(
        "--retries", type=int, default=2, help="retries of a task that failed unexpectedly"
    )
    g.add_argument(
        "--frames-per-task", type=int, help="stacks: frames per task and zarr chunk (--batch-size)"
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="redo outputs already written (deletes only what resfuse batch wrote)",
    )
    p.add_argument(
        "--save-intermediates",
        type=Path,
        metavar="DIR",
        help="pairs: also write base, detail and weight maps into DIR (as 'resfuse fuse')",
    )
    p.add_argument("--intermediate-format", choices=("tif", "png"), default="tif")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_fusion_options(p)
    add_registration_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..batch import run_batch

    options = options_from_args(args)
    summary = run_batch(
        args.input,
        args.visible,
        out=args.out,
        options=options,
        scheduler=args.scheduler,
        workers=args.workers,
        retries=args.retries,
        frames_per_task=args.frames_per_task,
        save_intermediates=args.save_intermediates,
        intermediate_format=args.intermediate_format,
        torch_threads=args.torch_threads,
        overwrite=args.overwrite,
        progress=not args.quiet,
        **registration_kwargs(args),
    )
    print(summary.report())
    if options.weights == "random":
        print(
            f"note: seeded random weights (random:seed={options.seed}): not the pretrained "
            "network of the paper; for testing only",
            file=sys.stderr,
        )
    return 0 if summary.ok else 1
