"""``make demo``: fuse the bundled sample and write the outputs into a folder.

Uses the ImageNet weights where torch's cache has them or they can be downloaded; otherwise it
says so in one line and uses seeded random weights, and every output name carries
``random-weights`` so that nobody mistakes them for the method's real output. Then, where a
display exists, it opens napari with the sample, the fusion widget and the result; headless, it
writes a screenshot of that viewer instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import WeightsNotAvailableError, fuse, imagenet_weights_file, load_sample
from .io import write_image, write_result


def run_demo(out_dir: Path, weights: str = "imagenet", gui: bool = True) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    infrared, visible = load_sample()
    try:
        result = fuse(infrared, visible, weights=weights)
    except WeightsNotAvailableError:
        print(
            "demo: the ImageNet weights are not cached and cannot be downloaded here, so this "
            "run uses seeded random weights (outputs marked 'random-weights'); to use them, put "
            f"{imagenet_weights_file()} in place or pass --weights PATH"
        )
        weights = "random"
        result = fuse(infrared, visible, weights=weights)
    tag = "" if result.params["pretrained"] else "_random-weights"
    write_image(out_dir / "sample_infrared.png", infrared)
    write_image(out_dir / "sample_visible.png", visible)
    written = write_result(
        result, out_dir / f"sample_fused{tag}.png", np.uint8, out_dir / f"maps{tag}", "png"
    )
    t = result.timings
    print(
        f"demo: fused the bundled {infrared.shape[1]}x{infrared.shape[0]} sample on "
        f"{result.params['device']} in {t['total']:.2f} s (network {t['features']:.2f} s); "
        f"weights: {result.params['weights_id']}"
    )
    print(f"demo: wrote {written[0]} and {len(written) - 1} maps in {written[1].parent}")
    shot = None
    if gui:
        try:
            from ._napari.demo import show_or_screenshot
        except ImportError as exc:  # napari or Qt missing: the files above are the demo
            print(f"demo: napari is not available ({exc}); skipping the viewer")
        else:
            shot = show_or_screenshot(out_dir, weights)
    return {"result": result, "written": written, "screenshot": shot}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m napari_resfuse.demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    parser.add_argument("--weights", default="imagenet", help="imagenet, random or a file")
    parser.add_argument("--no-gui", action="store_true", help="write files only")
    args = parser.parse_args(argv)
    run_demo(args.out, args.weights, gui=not args.no_gui)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
