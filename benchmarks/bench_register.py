"""Benchmark the automatic registration on generated warps of real-looking pairs.

Each aligned base pair is viewed by two simulated cameras (``tests/register/_warps.py``): the
visible camera sees the whole base, upsampled to ``--visible-rows`` rows (1080 by default);
the infrared camera has pixels 2 to 6 times larger, a roll of up to ±8°, and sees 50 to 100 %
of the base's side, shifted. For every model the same seeded warps are registered with the
default settings and the script prints, per model: the success rate (RMS error over the
overlap within 1 visible px), the median and 90th-percentile RMS error over the overlap, the
median RMS error at the visible frame's four corners (px at the visible resolution), how many
did not converge, and the median wall-clock and CPU time per pair.

Base pairs: ``--pairs-dir DIR`` with ``IR<name>.png`` / ``VIS<name>.png`` files (e.g. the TNO
pairs of github.com/diylife/imagefusion_deeplearning, ``IV_images/``), else the bundled sample
pair. ``--synthetic`` uses the made-up multimodal scenes of the tests instead. The truth
assumes the base pair is aligned; curated pairs are only aligned to a pixel or two, which
counts as error here.

    python benchmarks/bench_register.py --pairs-dir /path/to/IV_images --pairs 4 --warps 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.register import _warps

from napari_resfuse.io import read_image
from napari_resfuse.register._auto import estimate

MODELS = ("translation", "similarity", "affine", "projective")


def _grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        image = image[..., :3] @ np.array([0.299, 0.587, 0.114])
    return image


def base_pairs(args) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if args.synthetic:
        return [
            (f"scene{seed}", *_warps.scene((540, 720), seed=seed)) for seed in range(args.pairs)
        ]
    if args.pairs_dir:
        folder = Path(args.pairs_dir)
        pairs = []
        for ir_path in sorted(folder.glob("IR*.png"), key=lambda p: (len(p.name), p.name)):
            vis_path = folder / ("VIS" + ir_path.name[2:])
            if vis_path.exists():
                ir, vis = _grey(read_image(ir_path)), _grey(read_image(vis_path))
                if ir.shape == vis.shape:
                    pairs.append((ir_path.stem[2:], ir, vis))
        if pairs:
            step = max(1, len(pairs) // args.pairs)
            return pairs[::step][: args.pairs]
        print(f"no IR*/VIS*.png pairs in {folder}: using the bundled sample")
    from napari_resfuse.sample import load_sample

    ir, vis = load_sample()
    return [("sample", ir.astype(float), vis.astype(float))]


def warps(rng: np.random.Generator, n: int, model: str) -> list[dict]:
    out = []
    for _ in range(n):
        side = rng.uniform(0.5, 1.0)
        room = (1.0 - side) / 2.0
        kw = {
            "ratio": float(np.exp(rng.uniform(np.log(2.0), np.log(6.0)))),
            "rotation": float(rng.uniform(-8.0, 8.0)),
            "infrared_side": float(side),
            "offset": (float(rng.uniform(-room, room)), float(rng.uniform(-room, room))),
        }
        if model == "translation":
            kw.update(ratio=1.0, rotation=0.0)
        if model == "projective":
            kw["tilt"] = tuple(float(v) for v in rng.uniform(-2e-4, 2e-4, 2))
        out.append(kw)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs-dir", default=os.environ.get("RESFUSE_PAIRS_DIR"))
    parser.add_argument("--synthetic", action="store_true", help="made-up scenes as bases")
    parser.add_argument("--pairs", type=int, default=4, help="base pairs used (at most)")
    parser.add_argument("--warps", type=int, default=2, help="warps per base pair and model")
    parser.add_argument("--visible-rows", type=int, default=1080)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("-v", "--verbose", action="store_true", help="print every pair")
    args = parser.parse_args()

    bases = base_pairs(args)
    print(f"{len(bases)} base pair(s): {', '.join(name for name, *_ in bases)}")
    print(f"CPU cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}")
    rows = []
    for model in args.models.split(","):
        rng = np.random.default_rng(args.seed)
        errs, corners, walls, cpus, failed, shapes = [], [], [], [], 0, set()
        for name, ir0, vis0 in bases:
            vp = ir0.shape[0] / args.visible_rows
            for kw in warps(rng, args.warps, model):
                if model == "translation":
                    kw["visible_pixel"] = 1.0
                else:
                    kw["visible_pixel"] = vp
                ir, vis, true = _warps.warp_pair(ir0, vis0, **kw)
                shapes.add((ir.shape, vis.shape))
                wall, cpu = time.perf_counter(), time.process_time()
                found = estimate(ir, vis, model=model)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                err = _warps.overlap_rms(true, found.matrix, ir.shape, vis.shape)
                corner = _warps.corner_rms(true, found.matrix, vis.shape)
                failed += not found.converged
                errs.append(err if found.converged else np.inf)
                corners.append(corner if found.converged else np.inf)
                walls.append(wall)
                cpus.append(cpu)
                if args.verbose:
                    print(
                        f"  {model:11s} {name:8s} ratio {kw['ratio']:.2f} roll "
                        f"{kw['rotation']:+.1f}° side {kw['infrared_side']:.2f} ir {ir.shape} "
                        f"vis {vis.shape}: rms {err:.2f} corner {corner:.2f} px, "
                        f"{'converged' if found.converged else 'NOT converged'}, "
                        f"{wall:.2f} s ({cpu:.2f} s CPU)"
                    )
        errs_a = np.array(errs)
        rows.append(
            (
                model,
                len(errs),
                100.0 * np.mean(errs_a <= 1.0),
                np.percentile(errs_a, 50, method="higher"),
                np.percentile(errs_a, 90, method="higher"),  # inf (not converged) counts
                np.percentile(corners, 50, method="higher"),
                failed,
                np.median(walls),
                np.median(cpus),
                sorted(shapes)[0],
            )
        )
    print()
    print(
        f"{'model':12s} {'pairs':>5s} {'≤1 px':>7s} {'median':>7s} {'p90':>7s} {'corner':>7s} "
        f"{'not conv.':>9s} {'wall s':>7s} {'CPU s':>7s}  e.g. infrared / visible shape"
    )
    for model, n, ok, med, p90, corner, failed, wall, cpu, shape in rows:
        print(
            f"{model:12s} {n:5d} {ok:6.0f}% {med:7.2f} {p90:7.2f} {corner:7.2f} {failed:9d} "
            f"{wall:7.2f} {cpu:7.2f}  {shape[0]} / {shape[1]}"
        )


if __name__ == "__main__":
    main()
