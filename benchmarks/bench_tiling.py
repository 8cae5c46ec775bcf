"""Error of tiled feature extraction against the untiled run, as a function of the halo.

    python benchmarks/bench_tiling.py                    # 768 x 1024, tiles of 256 px
    python benchmarks/bench_tiling.py --size 1024x768 --tile 256 --halos 32 64 128 256

For each halo width (a multiple of 32) it fuses the same pair in tiles and prints the largest
and mean absolute difference of the fused image and of the max weights against one untiled
pass, and the time. The default halo of the engine (napari_resfuse.method.tiling.DEFAULT_HALO)
was chosen from this curve. Seeded random weights by default (no download); the curve with the
ImageNet weights can differ (--weights imagenet where they are available).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from napari_resfuse import fuse
from napari_resfuse.method import fuse as fuse_module
from napari_resfuse.method import tiling


def pair(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(5)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ir = 70 + 40 * np.exp(-((yy - height / 2) ** 2 + (xx - width / 3) ** 2) / 600.0)
    ir += 60 * np.sin(xx / 37.0) * np.cos(yy / 23.0) + 8 * g.standard_normal((height, width))
    vis = 120 + 50 * np.sin(xx / 2.5) * np.cos(yy / 3.5) + 10 * g.standard_normal((height, width))
    return (np.clip(ir, 0, 255).astype(np.uint8), np.clip(vis, 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1024x768", help="WxH")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--halos", type=int, nargs="+", default=[32, 64, 96, 128, 160, 192, 256])
    parser.add_argument("--weights", default="random")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    ir, vis = pair(height, width)
    start = time.perf_counter()
    full = fuse(ir, vis, weights=args.weights, device=args.device)
    print(f"{width}x{height}, untiled: {time.perf_counter() - start:.1f} s")
    print("halo  max|dF|    mean|dF|   max|dW|    time")
    default = tiling.DEFAULT_HALO
    try:
        for halo in args.halos:
            tiling.DEFAULT_HALO = fuse_module.DEFAULT_HALO = halo
            start = time.perf_counter()
            r = fuse(ir, vis, weights=args.weights, device=args.device, tile=args.tile)
            seconds = time.perf_counter() - start
            d = np.abs(r.fused_unclipped - full.fused_unclipped)
            dw = np.abs(r.weights - full.weights).max()
            print(f"{halo:4d}  {d.max():.2e}  {d.mean():.2e}  {dw:.2e}  {seconds:6.1f} s")
    finally:
        tiling.DEFAULT_HALO = fuse_module.DEFAULT_HALO = default


if __name__ == "__main__":
    main()
