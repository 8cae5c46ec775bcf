"""How close is fuse() to the cost of the network itself?

Measures in one process, side by side, on the same device and dtype:
  - the bare network: the truncated ResNet-152 (through layer4[0]) on a batch of two images;
  - fuse() end to end on 640 x 480 and 1920 x 1080 pairs with a warm model, and the first call
    of the process (model build and weight load included);
  - a stack of frames through the batched path, in frames per second;
  - peak memory (host RSS; device memory on GPU);
and prints the ratio fuse / bare forward per size, then one JSON line with every figure.
Medians over --repeats runs after one warm-up run.

    python benchmarks/bench_fusion.py                  # CPU (or the GPU when present)
    python benchmarks/bench_fusion.py --device cuda --precisions float32 bfloat16 float16
    python benchmarks/bench_fusion.py --large          # also a 6000 x 4000 pair (tiled)

Timing does not depend on the weight values, so the default is seeded random weights (no
download); pass --weights imagenet to use the pretrained ones where they are available.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import numpy as np
import psutil
import torch

from napari_resfuse import clear_cache, fuse
from napari_resfuse.method.backbones import get_feature_network, resolve_device
from napari_resfuse.options import FusionOptions


def scene(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 pair with structure at every scale (the content does not change the cost)."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ir = 90 + 60 * np.sin(xx / 53.0) * np.cos(yy / 41.0) + 10 * g.standard_normal((height, width))
    vis = 120 + 50 * np.sin(xx / 3.0) * np.cos(yy / 5.0) + 15 * g.standard_normal((height, width))
    return (np.clip(ir, 0, 255).astype(np.uint8), np.clip(vis, 0, 255).astype(np.uint8))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, device, repeats: int) -> float:
    fn()  # warm-up
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def bare_forward(network, ir, vis, device, options) -> callable:
    """The network alone on the batch of two detail-like images (already on the device)."""
    x = torch.from_numpy(np.stack([ir, vis]).astype(np.float32) / 255.0 - 0.5)[:, None].to(device)

    def run():
        with torch.inference_mode():
            images = x.expand(-1, 3, -1, -1)
            dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(options.precision)
            if dtype is None:
                network.module(images)
            else:
                with torch.autocast(device_type=device.type, dtype=dtype):
                    network.module(images)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="640x480,1920x1080", help="WxH list")
    parser.add_argument("--stack", type=int, default=32, help="frames of 640 x 480 (0: skip)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the engine's")
    parser.add_argument("--precisions", nargs="+", default=["float32"])
    parser.add_argument("--large", action="store_true", help="also fuse a 6000 x 4000 pair")
    args = parser.parse_args()

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    figures: dict = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "weights": args.weights,
        "repeats": args.repeats,
    }
    print(
        f"device {figures['device_name']} ({device}), torch {torch.__version__}, "
        f"{figures['cpu_threads']} CPU threads, weights={args.weights}"
    )

    # First call of the process: model build + weight load + one fusion of 640 x 480.
    clear_cache()
    ir, vis = scene(480, 640)
    start = time.perf_counter()
    fuse(ir, vis, weights=args.weights, device=str(device))
    sync(device)
    figures["first_call_640x480_s"] = time.perf_counter() - start
    print(f"first call (build + load + fuse 640x480): {figures['first_call_640x480_s']:.3f} s")

    reference = {}
    for precision in args.precisions:
        options = FusionOptions(weights=args.weights, device=str(device), precision=precision)
        network = get_feature_network(weights=args.weights, device=device)
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.lower().split("x"))
            ir, vis = scene(height, width)
            bare = median_time(
                bare_forward(network, ir, vis, device, options), device, args.repeats
            )
            result = {}

            def run_fuse(ir=ir, vis=vis, options=options, result=result):
                result["r"] = fuse(ir, vis, options)

            total = median_time(run_fuse, device, args.repeats)
            key = f"{precision}_{width}x{height}"
            figures[f"bare_forward_{key}_s"] = bare
            figures[f"fuse_{key}_s"] = total
            figures[f"ratio_{key}"] = total / bare
            line = (
                f"[{precision}] {width}x{height}: bare forward {bare * 1e3:9.1f} ms, "
                f"fuse {total * 1e3:9.1f} ms, ratio fuse / bare forward {total / bare:.3f}"
            )
            fused = result["r"].fused
            if precision == "float32":
                reference[size] = fused
            elif size in reference:
                err = float(np.abs(fused - reference[size]).max())
                figures[f"max_abs_err_vs_float32_{key}"] = err
                line += f", max |fused - float32| {err:.2e}"
            print(line)

    if args.stack:
        frames = [scene(480, 640, seed=s) for s in range(args.stack)]
        ir = np.stack([f[0] for f in frames])
        vis = np.stack([f[1] for f in frames])
        options = FusionOptions(
            weights=args.weights, device=str(device), batch_size=args.batch_size
        )
        per_stack = median_time(lambda: fuse(ir, vis, options), device, max(1, args.repeats // 2))
        figures["stack_frames"] = args.stack
        figures["stack_fps"] = args.stack / per_stack
        print(
            f"stack of {args.stack} frames 640x480, batch {args.batch_size or 'auto'}: "
            f"{figures['stack_fps']:.2f} frames/s"
        )

    if args.large:
        ir, vis = scene(4000, 6000)
        start = time.perf_counter()
        r = fuse(ir, vis, weights=args.weights, device=str(device))
        sync(device)
        figures["large_6000x4000_s"] = time.perf_counter() - start
        figures["large_tile_used"] = r.params["tile_used"]
        print(
            f"6000x4000: {figures['large_6000x4000_s']:.1f} s, tile {r.params['tile_used']}, "
            f"peak RSS so far {peak_rss_gib():.2f} GiB"
        )
        del r

    figures["peak_rss_gib"] = peak_rss_gib()
    figures["host_memory_gib"] = psutil.virtual_memory().total / 2**30
    if device.type == "cuda":
        figures["peak_device_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    print(
        f"peak host RSS {figures['peak_rss_gib']:.2f} GiB"
        + (
            f", peak device memory {figures['peak_device_memory_gib']:.2f} GiB"
            if device.type == "cuda"
            else ""
        )
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
