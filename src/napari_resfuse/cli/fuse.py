"""``resfuse fuse``: fuse a pair of files, a pair of stacks, or two folders of pairs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..io import (
    IMAGE_SUFFIXES,
    check_not_inputs,
    check_output_format,
    check_writable_folder,
    find_pairs,
    output_dtype,
    output_name,
    read_image,
    write_result,
)
from ..method.fuse import iter_fuse, run_with_progress
from ..options import FusionOptions
from . import report_failures
from ._options import add_fusion_options, options_from_args
from .register import add_registration_options, describe_alignment, registration_kwargs

__all__ = ["add_fusion_options", "options_from_args", "register", "run", "write_result"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fuse",
        help="fuse an infrared and a visible image (or stacks, or folders of pairs)",
        description="Fuse IR and VIS (files, multi-page TIFF stacks, or two folders whose "
        "images are paired by file name) and write the fused image in the inputs' bit depth.",
    )
    p.add_argument("infrared", type=Path, help="infrared image, stack or folder")
    p.add_argument("visible", type=Path, help="visible image, stack or folder")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output file (a folder for folders); never one of the inputs",
    )
    p.add_argument(
        "--save-intermediates",
        type=Path,
        metavar="DIR",
        help="also write base, detail and weight maps (and level weights) into DIR",
    )
    p.add_argument(
        "--intermediate-format",
        choices=("tif", "png"),
        default="tif",
        help="tif: exact float32 values; png: 8-bit pictures (detail shown as 0.5 + d)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_fusion_options(p)
    add_registration_options(p)
    p.set_defaults(func=run)


def _progress_bar(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="pair", disable=quiet, file=sys.stderr)


def _fuse_with_bar(ir, vis, options, quiet: bool, label: str, **registration):
    """Run the engine; a plane-level progress bar for stacks."""
    runner = iter_fuse(ir, vis, options, **registration)
    n_planes = int(np.prod(np.shape(ir)[:-2], dtype=int)) if np.ndim(ir) > 2 else 1
    if n_planes == 1 or quiet:
        return run_with_progress(runner)
    from tqdm import tqdm

    with tqdm(total=n_planes, desc=label, unit="plane", file=sys.stderr) as bar:

        def show(event) -> None:
            if event.stage == "reconstruct":
                bar.update(event.planes_done - bar.n)

        return run_with_progress(runner, show)


def _note_random(result) -> None:
    if result is not None and not result.params["pretrained"]:
        print(f"note: {result.params['warning']}", file=sys.stderr)


def _run_files(args: argparse.Namespace, options: FusionOptions) -> int:
    check_not_inputs(args.output, (args.infrared, args.visible))
    check_output_format(args.output)
    ir, vis = read_image(args.infrared), read_image(args.visible)
    dtype = output_dtype(ir.dtype, vis.dtype)
    check_output_format(args.output, dtype)  # before the fusion, not after it
    for folder in (args.output.parent, args.save_intermediates):
        if folder is not None:
            check_writable_folder(folder)
    result = _fuse_with_bar(
        ir, vis, options, args.quiet, args.infrared.name, **registration_kwargs(args)
    )
    written = write_result(
        result, args.output, dtype, args.save_intermediates, args.intermediate_format
    )
    print(f"wrote {written[0]}" + (f" and {len(written) - 1} maps" if len(written) > 1 else ""))
    if "registration" in result.params:
        print(describe_alignment(result.params["registration"]))
    _note_random(result)
    return 0


def _run_folders(args: argparse.Namespace, options: FusionOptions) -> int:
    out_dir = args.output
    if out_dir.suffix.lower() in IMAGE_SUFFIXES:
        raise ValueError(f"output {str(out_dir)!r} must be a folder when fusing folders")
    pairs = find_pairs(args.infrared, args.visible)
    check_not_inputs(out_dir, (pairs.infrared_dir, pairs.visible_dir))
    for folder in (out_dir, args.save_intermediates):
        if folder is not None:
            check_writable_folder(folder)
    failed: dict[str, str] = {}
    result = None
    bar = _progress_bar(len(pairs), "fusing", args.quiet)
    for name, ir_path, vis_path in pairs:
        try:
            ir, vis = read_image(ir_path), read_image(vis_path)
            dtype = output_dtype(ir.dtype, vis.dtype)
            out_path = out_dir / output_name(name, ir_path, dtype)
            check_not_inputs(out_path, (ir_path, vis_path))
            result = _fuse_with_bar(ir, vis, options, True, name, **registration_kwargs(args))
        except (ValueError, FileNotFoundError) as exc:  # this pair only: go on
            failed[name] = str(exc)
        else:
            write_result(result, out_path, dtype, args.save_intermediates, args.intermediate_format)
        bar.update(1)
    bar.close()
    done = len(pairs) - len(failed)
    failed.update(pairs.unmatched_items())
    print(f"fused {done} of {len(pairs)} pairs into {out_dir}")
    _note_random(result)
    return report_failures("fuse", failed)


def run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    folders = [args.infrared.is_dir(), args.visible.is_dir()]
    if all(folders):
        return _run_folders(args, options)
    if any(folders):
        role, path = ("infrared", args.infrared) if folders[0] else ("visible", args.visible)
        raise ValueError(
            f"the {role} input {str(path)!r} is a folder but the other is not: give two image "
            "files (or stacks) or two folders of pairs"
        )
    return _run_files(args, options)
