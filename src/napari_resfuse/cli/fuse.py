"""``resfuse fuse``: fuse a pair of files, a pair of stacks, or two folders of pairs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..io import (
    from_unit_range,
    match_pairs,
    output_dtype,
    pair_output_name,
    read_image,
    write_image,
)
from ..method.fuse import iter_fuse
from ..options import BACKBONES, VARIANTS, FusionOptions
from .register import add_registration_options, describe_alignment, registration_kwargs

_DEFAULTS = FusionOptions.__dataclass_fields__  # one source of truth for the defaults


def _default(name):
    return _DEFAULTS[name].default


def add_fusion_options(parser: argparse.ArgumentParser) -> None:
    """The FusionOptions fields as command-line flags (shared by sub-commands that fuse)."""
    g = parser.add_argument_group("method options (defaults: METHOD.md, the paper)")
    g.add_argument(
        "--weights",
        default=_default("weights"),
        help="'imagenet' (torchvision's ResNet152_Weights.IMAGENET1K_V1, downloaded on first "
        "use), 'random' (seeded, for tests: not the paper's network) or a state_dict file "
        "(default: %(default)s)",
    )
    g.add_argument(
        "--backbone", choices=BACKBONES, default=_default("backbone"), help="feature network"
    )
    g.add_argument(
        "--variant",
        choices=VARIANTS,
        default=_default("variant"),
        help="'paper' (default) or 'published-code' (the authors' MATLAB code's choices)",
    )
    g.add_argument("--seed", type=int, default=_default("seed"), help="seed of 'random' weights")
    g.add_argument(
        "--device",
        default=_default("device"),
        help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)",
    )
    g.add_argument(
        "--kernel-size", type=int, default=_default("kernel_size"), help="box filter side (eq. 1)"
    )
    g.add_argument(
        "--base-weights",
        type=float,
        nargs=2,
        metavar=("IR", "VIS"),
        help="lambda_1 lambda_2 of eq. 3 (default: 0.6 0.4; 0.5 0.5 for published-code)",
    )
    g.add_argument(
        "--layers",
        help="comma-separated feature levels (default: all of the backbone's, e.g. "
        "conv1,conv2_1,conv3_1,conv4_1,conv5_1 for resnet152)",
    )
    g.add_argument("--norm", choices=("l1", "l2"), default=_default("norm"), help="eq. 5 norm")
    g.add_argument(
        "--value-range",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="input value range mapped to [0, 1] (default: uint8 / 255, else min/max)",
    )
    g.add_argument("--color", choices=("ycbcr", "gray"), help="output of an RGB visible image")
    g.add_argument("--batch-size", type=int, default=_default("batch_size"), help="planes per pass")
    g.add_argument(
        "--precision", choices=("float32", "bfloat16", "float16"), default=_default("precision")
    )
    g.add_argument("--tile", type=int, help="tile side for large images (multiple of 32)")


def options_from_args(args: argparse.Namespace) -> FusionOptions:
    return FusionOptions(
        weights=args.weights,
        backbone=args.backbone,
        variant=args.variant,
        seed=args.seed,
        device=args.device,
        kernel_size=args.kernel_size,
        base_weights=tuple(args.base_weights) if args.base_weights else None,
        layers=tuple(n.strip() for n in args.layers.split(",") if n.strip())
        if args.layers
        else None,
        norm=args.norm,
        value_range=tuple(args.value_range) if args.value_range else None,
        color=args.color,
        batch_size=args.batch_size,
        precision=args.precision,
        tile=args.tile,
    )


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
        "-o", "--output", type=Path, required=True, help="output file (a folder for folders)"
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
    bar = None
    if n_planes > 1 and not quiet:
        from tqdm import tqdm

        bar = tqdm(total=n_planes, desc=label, unit="plane", file=sys.stderr)
    try:
        while True:
            try:
                event = next(runner)
            except StopIteration as stop:
                return stop.value
            if bar is not None and event.stage == "reconstruct":
                bar.update(event.planes_done - bar.n)
    finally:
        if bar is not None:
            bar.close()


def write_result(result, out_path: Path, dtype, intermediates: Path | None, fmt: str) -> list[Path]:
    """Write the fused image (and the intermediates) of a result; returns the paths written."""
    written = [write_image(out_path, from_unit_range(result.fused, dtype))]
    if intermediates is None:
        return written
    stem = out_path.stem
    maps = {}
    for k, source in enumerate(("ir", "vis")):
        maps[f"base_{source}"] = result.base[k]
        maps[f"detail_{source}"] = result.detail[k]
        maps[f"weights_{source}"] = result.weights[k]
        for i, level in enumerate(result.levels):
            maps[f"weights_{source}_{level}"] = result.level_weights[k, i]
    maps["fused_base"] = result.fused_base
    maps["fused_detail"] = result.fused_detail
    for name, image in maps.items():
        if fmt == "png":
            shown = image + 0.5 if "detail" in name else image
            data = from_unit_range(shown, np.uint8)
        else:
            data = image.astype(np.float32)
        written.append(write_image(intermediates / f"{stem}_{name}.{fmt}", data))
    for k, source in enumerate(("ir", "vis")):
        written.append(
            write_image(
                intermediates / f"{stem}_winning_level_{source}.{fmt}", result.winning_level[k]
            )
        )
    (intermediates / f"{stem}_params.json").write_text(
        json.dumps({"params": result.params, "timings": result.timings}, indent=2, default=str)
    )
    return written


def run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    if args.infrared.is_dir() or args.visible.is_dir():
        pairs = match_pairs(args.infrared, args.visible)
        out_dir = args.output
        if out_dir.suffix.lower() in (".png", ".tif", ".tiff", ".jpg"):
            raise ValueError(f"output {str(out_dir)!r} must be a folder when fusing folders")
        bar = _progress_bar(len(pairs), "fusing", args.quiet)
        for stem, ir_path, vis_path in pairs:
            ir, vis = read_image(ir_path), read_image(vis_path)
            result = _fuse_with_bar(ir, vis, options, True, stem, **registration_kwargs(args))
            dtype = output_dtype(ir.dtype, vis.dtype)
            write_result(
                result,
                out_dir / pair_output_name(stem, ir_path, dtype),
                dtype,
                args.save_intermediates,
                args.intermediate_format,
            )
            bar.update(1)
        bar.close()
        print(f"fused {len(pairs)} pairs into {out_dir}")
    else:
        ir, vis = read_image(args.infrared), read_image(args.visible)
        result = _fuse_with_bar(
            ir, vis, options, args.quiet, args.infrared.name, **registration_kwargs(args)
        )
        written = write_result(
            result,
            args.output,
            output_dtype(ir.dtype, vis.dtype),
            args.save_intermediates,
            args.intermediate_format,
        )
        print(f"wrote {written[0]}" + (f" and {len(written) - 1} maps" if len(written) > 1 else ""))
        if "registration" in result.params:
            print(describe_alignment(result.params["registration"]))
    if not result.params["pretrained"]:
        print(f"note: {result.params['warning']}", file=sys.stderr)
    return 0
