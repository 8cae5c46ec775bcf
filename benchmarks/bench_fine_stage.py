"""What the polish's fine stage brings, and why it is one Newton step rather than an optimiser.

When the coarser image is larger than the polish's working grid (256 px: a 640 x 512 thermal
frame), :mod:`napari_resfuse.register._polish` maximises the edge-orientation measure on that
shrunk grid with SciPy's L-BFGS-B, then makes one Newton step on the image's own grid.
For a few made-up rig pairs (a thermal frame of 324 x 432 to 464 x 618 px beside a visible
frame 2.8 to 5.5 times finer, up to 3000 x 4000 px) this script registers each pair three
ways and prints the RMS error over the overlap (visible px) and the wall time:

- ``newton``: the default (the fine stage's Newton step);
- ``none``: without the fine stage (the shrunk grid's stage only);
- ``lbfgs``: the fine stage done by L-BFGS-B (the first stage's optimiser, exact gradients,
  iterated to convergence) on the same full-resolution grid.

    python benchmarks/bench_fine_stage.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.register import _warps

from napari_resfuse.register import _polish
from napari_resfuse.register._auto import estimate

#: (scene shape, scene seed, warp): a visible frame upsampled from the scene (visible_pixel
#: < 1), the infrared 2.8 to 5.5 times coarser than the visible.
CASES = [
    ((1500, 2000), 3, {"ratio": 5.5, "rotation": 4.0, "infrared_side": 0.85,
                       "offset": (0.04, -0.03), "visible_pixel": 0.5}),
    ((540, 720), 1, {"ratio": 2.9, "rotation": 5.0, "infrared_side": 0.85,
                     "offset": (0.05, -0.03), "visible_pixel": 1.15 / 2.9}),
    ((540, 720), 1, {"ratio": 2.8, "rotation": -6.0, "infrared_side": 0.6,
                     "offset": (-0.1, 0.08), "visible_pixel": 1.0 / 2.8}),
]  # fmt: skip


def _none(measure):
    return None, 0.0, 0.0


def _lbfgs(measure):
    before = measure(np.zeros(measure.size))
    found = _polish._maximise(measure)
    return (found.x if -found.fun > before else None), before, max(before, -found.fun)


def main() -> None:
    newton = _polish._newton
    # Warm up: the first estimate in a process imports SimpleITK and torch (1 to 2 s).
    estimate(*_warps.warp_pair(*_warps.scene((120, 160), seed=0), ratio=2.0)[:2])
    print(f"{'infrared':>11s} {'visible':>12s} {'model':10s}  newton / none / lbfgs: rms px (s)")
    for shape, seed, kw in CASES:
        ir, vis, true = _warps.warp_pair(*_warps.scene(shape, seed=seed), **kw)
        for model in ("similarity", "affine"):
            cells = []
            for stage in (newton, _none, _lbfgs):
                _polish._newton = stage
                try:
                    t0 = time.perf_counter()
                    found = estimate(ir, vis, model=model)
                    wall = time.perf_counter() - t0
                finally:
                    _polish._newton = newton
                err = _warps.overlap_rms(true, found.matrix, ir.shape, vis.shape)
                cells.append(f"{err:.2f} ({wall:.1f})" if found.converged else "refused")
            print(f"{ir.shape!s:>11s} {vis.shape!s:>12s} {model:10s}  " + " / ".join(cells))


if __name__ == "__main__":
    main()
