"""Time the three published FMI variants on a 640 x 480 triple.

Run: ``python benchmarks/bench_metrics_fmi.py [--repeat N]``. Prints, per metric, the best
wall-clock and CPU time over the repeats, and the total. The images are smooth random textures
(seeded), so the edge maps have realistic sparsity; the timing of the DCT and wavelet variants does
not depend on the content.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from scipy import ndimage

from napari_resfuse.metrics.fmi import fmi_dct, fmi_pixel, fmi_wavelet


def _texture(rng: np.random.Generator, shape=(480, 640)) -> np.ndarray:
    image = ndimage.gaussian_filter(rng.random(shape), 3.0)
    image = (image - image.min()) / (image.max() - image.min())
    return np.round(image * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per metric (best kept)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    ir, vis = _texture(rng), _texture(rng)
    fused = np.round((ir.astype(float) + vis) / 2).astype(np.uint8)
    fmi_pixel(ir[:32, :32], vis[:32, :32], fused[:32, :32])  # warm-up (imports, caches)

    print(f"FMI on a {ir.shape[1]} x {ir.shape[0]} uint8 triple, best of {args.repeat}")
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}")
    total_wall = total_cpu = 0.0
    for metric in (fmi_pixel, fmi_dct, fmi_wavelet):
        best_wall = best_cpu = float("inf")
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            value = metric(ir, vis, fused)
            best_wall = min(best_wall, time.perf_counter() - wall)
            best_cpu = min(best_cpu, time.process_time() - cpu)
        total_wall += best_wall
        total_cpu += best_cpu
        print(f"{metric.__name__:12s} {value:.4f}  wall {best_wall:6.3f} s  cpu {best_cpu:6.3f} s")
    print(f"{'total':12s} {'':6s}  wall {total_wall:6.3f} s  cpu {total_cpu:6.3f} s")


if __name__ == "__main__":
    main()
