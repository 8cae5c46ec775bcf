"""Time every fusion metric on a 640 x 480 triple; print a table and the total.

Usage::

    python benchmarks/bench_metrics.py [--repeats 3] [--height 480] [--width 640]

Each metric is timed ``--repeats`` times on the same generated uint8 triple (a smooth "infrared"
blob scene with noise, a textured "visible" image, their average as "fused"); the table gives the
median, and the last line ``compute_metrics`` of all metrics at once (median as well).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from napari_resfuse.metrics import METRIC_NAMES, METRICS, compute_metrics


def make_triple(height: int, width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    ir = 60 + 150 * np.exp(
        -((yy - height / 2) ** 2 + (xx - width / 3) ** 2) / (0.02 * height * width)
    )
    ir = np.clip(ir + rng.normal(0, 6, (height, width)), 0, 255).astype(np.uint8)
    vis = 120 + 60 * np.sin(xx / 7.0) * np.cos(yy / 11.0) + rng.normal(0, 12, (height, width))
    vis = np.clip(vis, 0, 255).astype(np.uint8)
    fused = ((ir.astype(np.int32) + vis) // 2).astype(np.uint8)
    return ir, vis, fused


def median_time(func, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    args = parser.parse_args()

    ir, vis, fused = make_triple(args.height, args.width)
    print(
        f"{args.width} x {args.height} uint8 triple, median of {args.repeats} runs; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), "
        f"numpy {np.__version__}"
    )
    print(f"{'metric':<20} {'seconds':>9} {'value':>12}")
    print("-" * 43)
    total = 0.0
    for name in METRIC_NAMES:
        func = METRICS[name]
        seconds = median_time(lambda func=func: func(ir, vis, fused), args.repeats)
        total += seconds
        print(f"{name:<20} {seconds:>9.4f} {func(ir, vis, fused):>12.6g}")
    print("-" * 43)
    print(f"{'sum of the above':<20} {total:>9.4f}")
    together = median_time(lambda: compute_metrics(ir, vis, fused), args.repeats)
    print(f"{'compute_metrics':<20} {together:>9.4f}")


if __name__ == "__main__":
    main()
