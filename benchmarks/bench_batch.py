"""Pairs per second: ``resfuse batch`` on 1 and 2 local worker processes vs the plain loop.

A folder of synthetic uint8 pairs (the bundled sample's generator with different seeds,
resized) is fused these ways, each writing the same PNG files (checked byte for byte):

  loop              one process, the model built once, read -> fuse -> write per pair (what
                    ``resfuse fuse IR_DIR VIS_DIR`` does), torch on every core;
  loop, 1 thread    the same with one torch thread;
  batch x1          ``run_batch`` on a LocalCluster of 1 worker process (torch on every core);
  batch x2          ``run_batch`` on a LocalCluster of 2 worker processes (one core each).

Steady rate: the model already built and the clusters running (the throughput of a long
batch). The ways run in turn, round after round, so that they see the same background load;
median and best (min time) of the rounds are printed. Then the end-to-end time of each command
as a user runs it (a fresh process: interpreter, cluster start and model build included).
Timing does not depend on the weight values: seeded random weights by default (no download).

    python benchmarks/bench_batch.py                      # 8 pairs of 128 x 160, 3 rounds
    python benchmarks/bench_batch.py --pairs 24 --size 240 320 --rounds 5 --no-cli
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_pairs(folder: Path, n: int, size: tuple[int, int]) -> None:
    import imageio.v3 as iio
    from skimage.transform import resize

    from napari_resfuse import make_sample_pair

    for sub in ("infrared", "visible"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        for sub, image in zip(("infrared", "visible"), make_sample_pair(seed=i), strict=True):
            if image.shape != size:
                image = (resize(image / 255.0, size, anti_aliasing=True) * 255).astype(np.uint8)
            iio.imwrite(folder / sub / f"pair{i:04d}.png", image)


def loop_once(pairs, out: Path, options, threads: int) -> float:
    """Seconds of the plain loop over every pair (model already built)."""
    import torch

    from napari_resfuse.io import output_dtype, read_image, write_result
    from napari_resfuse.method.fuse import fuse

    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for name, ir_path, vis_path in pairs:
        ir, vis = read_image(ir_path), read_image(vis_path)
        result = fuse(ir, vis, options)
        write_result(result, out / f"{name}.png", output_dtype(ir.dtype, vis.dtype), None, "tif")
    return time.perf_counter() - start


def batch_once(client, root: Path, out: Path, options, threads: int) -> float:
    """Seconds of run_batch on a running cluster whose workers hold the model."""
    from napari_resfuse.batch import run_batch

    summary = run_batch(root, out=out, client=client, options=options, torch_threads=threads,
                        overwrite=True, progress=False)  # fmt: skip
    assert summary.ok, summary.report()
    return summary.seconds


def _differences(a: Path, b: Path) -> tuple[int, int, int]:
    """(files that differ, pixels that differ, largest difference in grey levels)."""
    import imageio.v3 as iio

    files = pixels = largest = 0
    for p in sorted(a.glob("*.png")):
        x, y = (iio.imread(f).astype(int) for f in (p, b / p.name))
        differ = int(np.count_nonzero(x != y))
        files += differ > 0
        pixels += differ
        largest = max(largest, int(np.abs(x - y).max()))
    return files, pixels, largest


def cli_seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "napari_resfuse.cli", *argv], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=(128, 160), metavar=("H", "W"))
    parser.add_argument("--weights", default="random")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of steady runs")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI runs")
    args = parser.parse_args()

    import torch

    from napari_resfuse.batch import ModelPlugin, start_client
    from napari_resfuse.io import find_pairs
    from napari_resfuse.method.fuse import fuse
    from napari_resfuse.options import FusionOptions

    options = FusionOptions(weights=args.weights, device="cpu")
    cores = os.cpu_count() or 1
    n = args.pairs
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    load_before = os.getloadavg()
    try:
        make_pairs(tmp / "in", n, tuple(args.size))
        pairs = find_pairs(tmp / "in" / "infrared", tmp / "in" / "visible")
        fuse(*(np.zeros(args.size, np.uint8) + np.eye(*args.size, dtype=np.uint8),) * 2, options)
        ways = ("loop", "loop, 1 thread", "batch x1", "batch x2")
        runs: dict[str, list[float]] = {way: [] for way in ways}
        with contextlib.ExitStack() as stack:
            clients = {}
            for workers in (1, 2):
                client = stack.enter_context(start_client("processes", workers))
                threads = max(1, cores // workers)
                client.register_plugin(ModelPlugin(options, threads), name=ModelPlugin.name)
                clients[workers] = (client, threads)
            for _ in range(args.rounds):
                runs["loop"].append(loop_once(pairs, tmp / "loop", options, cores))
                runs["loop, 1 thread"].append(loop_once(pairs, tmp / "loop1", options, 1))
                for workers in (1, 2):
                    client, threads = clients[workers]
                    out = tmp / f"batch{workers}"
                    runs[f"batch x{workers}"].append(
                        batch_once(client, tmp / "in", out, options, threads)
                    )
        torch.set_num_threads(cores)
        # Same torch thread count, same float result, same bytes: batch x1 runs like the loop
        # (all cores), batch x2 like the one-thread loop. Across thread counts, summation order
        # differs in the last float bit and a pixel can round the other way: counted, not equal.
        for ref, folder in (("loop", "batch1"), ("loop1", "batch2")):
            for p in (tmp / ref).glob("*.png"):
                assert (tmp / folder / p.name).read_bytes() == p.read_bytes(), (folder, p.name)
        across = _differences(tmp / "loop", tmp / "loop1")

        cli: dict[str, float] = {}
        if not args.no_cli:
            common = ["--weights", args.weights, "--device", "cpu", "-q"]
            ins = [str(tmp / "in" / "infrared"), str(tmp / "in" / "visible")]
            cli["resfuse fuse (loop)"] = cli_seconds(["fuse", *ins, "-o", str(tmp / "c0"), *common])
            for w in (1, 2):
                cli[f"resfuse batch --workers {w}"] = cli_seconds(
                    ["batch", *ins, "--out", str(tmp / f"c{w}"), "--workers", str(w), *common]
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{n} pairs of {args.size[0]} x {args.size[1]}, all five levels, weights "
          f"{args.weights!r}, CPU: {cores} cores ({platform.processor() or platform.machine()}), "
          f"torch {torch.__version__}")  # fmt: skip
    print(f"load average (1, 5, 15 min) before: {tuple(round(v, 2) for v in load_before)}, "
          f"after: {tuple(round(v, 2) for v in os.getloadavg())}")  # fmt: skip
    print(f"\nsteady rate (model built, clusters running), {args.rounds} interleaved rounds:")
    print(f"  {'':<15} {'median':>8} {'pairs/s':>8} {'vs loop':>8}   {'best':>7} {'pairs/s':>8}"
          f" {'vs loop':>8}")  # fmt: skip
    med = {way: statistics.median(t) for way, t in runs.items()}
    best = {way: min(t) for way, t in runs.items()}
    for way in runs:
        print(f"  {way:<15} {med[way]:7.2f}s {n / med[way]:8.2f} {med['loop'] / med[way]:7.2f}x"
              f"   {best[way]:6.2f}s {n / best[way]:8.2f} {best['loop'] / best[way]:7.2f}x")  # fmt: skip
    print(f"\nfiles: batch x1 = loop and batch x2 = loop with 1 thread, byte for byte; loop vs loop"
          f" with 1 thread: {across[0]} of {n} files differ, {across[1]} pixels, by at most "
          f"{across[2]} grey level(s) (float summation order)")  # fmt: skip
    if cli:
        print("\nend to end, a fresh process per command (start-up and model build included):")
        base_cli = cli["resfuse fuse (loop)"]
        for way, seconds in cli.items():
            print(f"  {way:<26} {seconds:7.2f} s  {n / seconds:6.2f} pairs/s  "
                  f"{base_cli / seconds:.2f}x vs loop")  # fmt: skip
    print(json.dumps({"pairs": n, "size": list(args.size), "steady_runs_s": runs, "cli_s": cli}))


if __name__ == "__main__":
    main()
