"""``resfuse register``: align an infrared image to a visible one and save the registration.

Also holds the ``--registration`` / ``--grid`` / ``--crop`` flags that ``resfuse fuse`` adds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..io import read_image, write_image

_LANDMARK_COLUMNS = "infrared_row,infrared_col,visible_row,visible_col"


def add_registration_options(parser: argparse.ArgumentParser) -> None:
    """``--registration``, ``--grid`` and ``--crop`` for a sub-command that fuses."""
    g = parser.add_argument_group("unaligned pairs (see 'resfuse register')")
    g.add_argument(
        "--registration",
        metavar="auto|FILE",
        help="align the infrared image to the visible one first: 'auto' (registered per "
        "pair) or a registration file from 'resfuse register' (one rig for every pair/plane)",
    )
    g.add_argument(
        "--grid",
        choices=("visible", "infrared"),
        default="visible",
        help="with --registration: fuse on the visible grid (default) or on the infrared "
        "grid (cheaper for large visible frames)",
    )
    g.add_argument(
        "--crop",
        choices=("overlap", "none"),
        default="overlap",
        help="with --registration: crop to the largest rectangle inside the overlap "
        "(default) or keep the whole frame ('none': outside the overlap the fused image is "
        "the image that sees it)",
    )


def registration_kwargs(args: argparse.Namespace) -> dict:
    """The ``fuse``/``iter_fuse`` keywords of the flags above (empty without --registration)."""
    if not getattr(args, "registration", None):
        return {}
    return {
        "registration": args.registration,
        "grid": args.grid,
        "crop": None if args.crop == "none" else "overlap",
    }


def describe_alignment(info: dict) -> str:
    """One line about how a fused pair was aligned (``result.params["registration"]``)."""
    text = f"aligned ({info['model']}, {info['method']}): overlap {100 * info['overlap']:.1f} %"
    text += f" of the visible frame, fused on the {info['grid']} grid"
    if info["crop"] == "overlap":
        (r, c), (h, w) = info["crop_offset"], info["crop_shape"]
        text += f", cropped to {h} x {w} px at row {r}, column {c}"
    return text


def read_landmarks(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(infrared_points, visible_points)`` from a CSV of ``infrared_row, infrared_col,
    visible_row, visible_col`` (one pair per line; an optional header line; ``#`` comments)."""
    if not path.is_file():
        raise FileNotFoundError(f"landmarks file {str(path)!r} does not exist")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = [f.strip() for f in text.replace(";", ",").replace("\t", ",").split(",")]
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if not rows:  # a header line
                continue
            raise ValueError(
                f"landmarks file {str(path)!r}, line {number}: expected 4 numbers "
                f"({_LANDMARK_COLUMNS}), got {text!r}"
            ) from None
        if len(values) != 4:
            raise ValueError(
                f"landmarks file {str(path)!r}, line {number}: expected 4 numbers "
                f"({_LANDMARK_COLUMNS}), got {len(values)}"
            )
        rows.append(values)
    if not rows:
        raise ValueError(f"landmarks file {str(path)!r} holds no point pairs")
    table = np.array(rows)
    return table[:, :2], table[:, 2:]


def register(subparsers) -> None:
    from ..register import MIN_OVERLAP, MODELS
    from ..register._preview import PREVIEW_STYLES

    p = subparsers.add_parser(
        "register",
        help="align an infrared image to a visible one (automatic or from landmarks)",
        description="Register the infrared image IR onto the pixel grid of the visible image "
        "VIS and write the registration (a small JSON file) for 'resfuse fuse "
        "--registration'. Prints the score, the overlap and, for landmarks, the RMS residual.",
    )
    p.add_argument("infrared", type=Path, help="infrared image (a stack: its first plane)")
    p.add_argument("visible", type=Path, help="visible image (a stack: its first plane)")
    p.add_argument("-o", "--output", type=Path, required=True, help="registration file (.json)")
    p.add_argument("--model", choices=MODELS, default="affine", help="default: %(default)s")
    p.add_argument(
        "--landmarks",
        type=Path,
        metavar="CSV",
        help=f"fit to corresponding points instead: a CSV of {_LANDMARK_COLUMNS} (pixels)",
    )
    p.add_argument(
        "--scale-hint",
        type=float,
        help="automatic: infrared pixels per visible pixel, if known (e.g. from the fields "
        "of view)",
    )
    p.add_argument(
        "--min-overlap",
        type=float,
        default=MIN_OVERLAP,
        help="automatic: smallest accepted shared fraction of the smaller frame "
        "(default: %(default)s)",
    )
    p.add_argument("--preview", type=Path, metavar="PNG", help="write a picture of the alignment")
    p.add_argument(
        "--preview-style",
        choices=PREVIEW_STYLES,
        default="checkerboard",
        help="checkerboard of both images, or a magenta/green blend (default: %(default)s)",
    )
    p.set_defaults(func=run)


def _shape(array: np.ndarray) -> tuple[int, int]:
    if array.ndim >= 3 and array.shape[-1] in (3, 4):
        return tuple(array.shape[-3:-1])
    return tuple(array.shape[-2:])


def run(args: argparse.Namespace) -> int:
    from ..register import register as register_auto
    from ..register import register_landmarks
    from ..register._preview import preview

    if args.output.suffix.lower() != ".json":
        raise ValueError(f"output {str(args.output)!r} must be a .json file")
    if args.preview is not None and args.preview.suffix.lower() not in (".png", ".tif", ".tiff"):
        raise ValueError(f"preview {str(args.preview)!r} must be a .png or .tif file")
    ir, vis = read_image(args.infrared), read_image(args.visible)
    for name, path, image in (("infrared", args.infrared, ir), ("visible", args.visible, vis)):
        if image.ndim < 2:
            raise ValueError(f"{name} file {str(path)!r} is not an image (shape {image.shape})")
    if args.landmarks is not None:
        ir_points, vis_points = read_landmarks(args.landmarks)
        reg = register_landmarks(
            ir_points,
            vis_points,
            model=args.model,
            infrared_shape=_shape(ir),
            visible_shape=_shape(vis),
        )
    else:
        reg = register_auto(
            ir, vis, model=args.model, scale_hint=args.scale_hint, min_overlap=args.min_overlap
        )
    reg.save(args.output)
    print(f"wrote {args.output}: {reg.model} ({reg.method})")
    if reg.score is not None:
        print(f"score: {reg.score:.4g} ({reg.metric})")
    print(
        f"overlap: {100 * reg.overlap:.1f} % of the visible frame, "
        f"{100 * reg.overlap_smaller:.1f} % of the smaller frame"
    )
    print(f"scale: {reg.scale:.4g} infrared px per visible px, rotation: {reg.rotation:.2f} deg")
    if reg.rms is not None:
        worst = int(np.argmax(reg.residuals))
        print(
            f"RMS residual: {reg.rms:.3f} visible px over {reg.residuals.size} pairs "
            f"(largest {reg.residuals[worst]:.3f} px, pair {worst + 1})"
        )
    if args.preview is not None:
        write_image(args.preview, preview(reg, ir, vis, style=args.preview_style))
        print(f"wrote {args.preview}")
    return 0
