"""Paired timing of the automatic registration: this checkout against another, pair by pair.

On a shared machine the same estimate's wall time drifts by up to 1.5 times within minutes, so
two versions timed in two separate runs of ``bench_register.py`` cannot be compared closely.
This script registers the same generated pairs (``bench_register.py``'s warps of made-up
scenes) with both checkouts alternately, each pair in a fresh process per checkout (each
imports its own ``napari_resfuse``; the pairs are always made by this checkout's code), and
prints each pair's wall time and error for both, the means and their ratio::

    git worktree add /tmp/before HEAD~6        # the version to compare with
    python benchmarks/bench_paired.py /tmp/before --model affine --camera rig --pairs 8
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _case(model: str, camera: str, shape: tuple[int, int], index: int):
    """Pair ``index`` of ``bench_register.py``'s seeded warps (two per scene, four scenes)."""
    import numpy as np
    from benchmarks.bench_register import warps
    from tests.register import _warps

    rng = np.random.default_rng(12)
    cases = [(s, kw) for s in range(4) for kw in warps(rng, 2, model, camera)]
    scene, kw = cases[index]
    return _warps.warp_pair(*_warps.scene(shape, seed=scene), **kw)


def _child(root: str, model: str, camera: str, shape: tuple[int, int], index: int) -> None:
    sys.path[:0] = [str(Path(root) / "src"), str(HERE)]  # that checkout's package first
    import torch  # noqa: F401  (imported before the clock starts, as in a running session)
    from tests.register import _warps

    from napari_resfuse.register._auto import estimate

    ir, vis, true = _case(model, camera, shape, index)
    estimate(ir[:64, :64], vis[:64, :64], model="translation")  # imports SimpleITK
    t0 = time.perf_counter()
    found = estimate(ir, vis, model=model)
    wall = time.perf_counter() - t0
    err = _warps.overlap_rms(true, found.matrix, ir.shape, vis.shape) if found.converged else -1
    print(f"{wall:.3f} {err:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("other", nargs="?", help="the other checkout (with src/napari_resfuse)")
    parser.add_argument("--model", default="affine")
    parser.add_argument("--camera", choices=("issue", "rig"), default="rig")
    parser.add_argument(
        "--scene-shape",
        type=lambda text: tuple(int(v) for v in text.split(",")),
        default=(540, 720),
    )
    parser.add_argument("--pairs", type=int, default=8, help="pairs (at most 8)")
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "INDEX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.model, args.camera, args.scene_shape, int(args.child[1]))
        return
    if args.other is None:
        parser.error("name the other checkout to compare with")
    roots = {"other": str(Path(args.other).resolve()), "this": str(HERE)}
    walls = {name: [] for name in roots}
    shape = ",".join(str(v) for v in args.scene_shape)
    for index in range(min(args.pairs, 8)):
        cells = []
        for name, root in roots.items():
            out = subprocess.run(
                [sys.executable, __file__, "--model", args.model, "--camera", args.camera,
                 "--scene-shape", shape, "--child", root, str(index)],
                capture_output=True, text=True, check=True,
            ).stdout.split()  # fmt: skip
            wall, err = float(out[-2]), float(out[-1])
            walls[name].append(wall)
            cells.append(f"{name} {wall:.2f} s ({'refused' if err < 0 else f'{err:.2f} px'})")
        print(f"pair {index}: " + ", ".join(cells), flush=True)
    other, this = (sum(v) / len(v) for v in walls.values())
    print(f"mean wall: other {other:.2f} s, this {this:.2f} s; this / other = {this / other:.2f}")


if __name__ == "__main__":
    main()
