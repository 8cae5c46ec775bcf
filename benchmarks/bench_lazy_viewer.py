"""How long the napari viewer waits when a lazy fused layer shows a new plane.

Two dask-backed uint8 stacks (the bundled sample's generator, resized) are added to a real
napari viewer (not shown) and fused lazily with the widget's default outputs, two ways:

  synchronous   ``fuse_layers_lazy(..., background=False)``: the layers hold dask arrays and
                napari's (default, synchronous) slicing fuses the plane in the main thread;
  background    the default in a Qt application: the plane is fused in a background thread
                and the layers are refreshed when it is ready.

For each way it prints, per slider move: how long ``viewer.dims.set_current_step`` kept the
main thread (what a user feels as a frozen viewer), how long until the new plane was on screen,
and the longest gap between the ticks of a 10 ms Qt timer meanwhile (the event loop's worst
stall). Then a scrub: the slider is moved over ``--scrub`` consecutive frames without waiting,
and the engine calls made are counted. Timing does not depend on the weight values: seeded
random weights by default (no download). Needs a display (``xvfb-run -a`` on a headless
machine).

    xvfb-run -a python benchmarks/bench_lazy_viewer.py                  # 640 x 512, 3 moves
    xvfb-run -a python benchmarks/bench_lazy_viewer.py --size 240 320 --moves 5 --scrub 8
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np


def make_stacks(frames: int, size: tuple[int, int]):
    import dask.array as da
    from skimage.transform import resize

    from napari_resfuse import make_sample_pair

    irs, viss = [], []
    for i in range(frames):
        pair = make_sample_pair(seed=i)
        if pair[0].shape != size:
            pair = [
                (resize(p / 255.0, size, anti_aliasing=True) * 255).astype(np.uint8) for p in pair
            ]
        irs.append(pair[0])
        viss.append(pair[1])
    chunks = (1, *size)
    return da.from_array(np.stack(irs), chunks=chunks), da.from_array(np.stack(viss), chunks=chunks)


class Ticker:
    """A 10 ms Qt timer that records the longest gap between its ticks."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.reset()

    def reset(self):
        self.last = time.perf_counter()
        self.worst = 0.0

    def _tick(self):
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last)
        self.last = now


def run_way(viewer, ir, vis, background: bool, moves: list[int], scrub: int, options) -> dict:
    from qtpy.QtWidgets import QApplication

    from napari_resfuse._napari.lazy_layers import fuse_layers_lazy, lazy_of

    app = QApplication.instance()
    viewer.layers.clear()
    viewer.add_image(ir, name="ir", contrast_limits=(0, 255))
    viewer.add_image(vis, name="vis", contrast_limits=(0, 255))
    layers = fuse_layers_lazy(viewer, "ir", "vis", background=background, **options)
    lazy = lazy_of(layers[0])
    time_axis = viewer.dims.ndim - 3  # (level, time, y, x): the weights layer is in

    def shown() -> bool:
        return not background or not any(layer.data.pending for layer in layers)

    def settle():
        while not shown():
            app.processEvents()
            time.sleep(0.002)
        app.processEvents()

    settle()
    ticker = Ticker()
    ticker.timer.start()
    rows = []
    for t in moves:
        app.processEvents()
        ticker.reset()
        start = time.perf_counter()
        viewer.dims.set_current_step(time_axis, t)
        held = time.perf_counter() - start
        app.processEvents()  # the ticks that were due while the main thread was held
        settle()
        rows.append({"held": held, "shown": time.perf_counter() - start, "stall": ticker.worst})
    calls = lazy.calls
    start_frame = moves[-1] + 1
    start = time.perf_counter()
    for t in range(start_frame, start_frame + scrub):
        viewer.dims.set_current_step(time_axis, t)
        app.processEvents()
    scrub_held = time.perf_counter() - start
    settle()
    ticker.timer.stop()
    return {"rows": rows, "scrub_calls": lazy.calls - calls, "scrub_held": scrub_held}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs=2, default=(512, 640), metavar=("H", "W"))
    parser.add_argument("--moves", type=int, default=3, help="slider moves timed per way")
    parser.add_argument("--scrub", type=int, default=5, help="frames passed over in the scrub")
    parser.add_argument("--weights", default="random")
    args = parser.parse_args(argv)

    import napari
    import torch

    from napari_resfuse import __version__

    moves = [2 + 3 * i for i in range(args.moves)]
    frames = moves[-1] + 2 + args.scrub
    ir, vis = make_stacks(frames, tuple(args.size))
    options = {"weights": args.weights, "seed": 0}
    print(
        f"napari-resfuse {__version__}, napari {napari.__version__}, torch {torch.__version__}, "
        f"{platform.machine()} with {torch.get_num_threads()} torch threads"
    )
    print(
        f"{frames} frames of {args.size[0]} x {args.size[1]}, default outputs, weights "
        f"{args.weights!r}\n"
    )
    viewer = napari.Viewer(show=False)
    try:
        results = {}
        for name, background in (("synchronous", False), ("background", True)):
            results[name] = run_way(viewer, ir, vis, background, moves, args.scrub, options)
    finally:
        viewer.close()

    print(f"{'way':<12} {'main thread held':>17} {'until shown':>12} {'worst stall':>12}")
    for name, result in results.items():
        rows = result["rows"]
        held = statistics.median(r["held"] for r in rows)
        shown = statistics.median(r["shown"] for r in rows)
        stall = max(r["stall"] for r in rows)
        print(f"{name:<12} {held:>15.3f} s {shown:>10.3f} s {stall:>10.3f} s")
    sync, back = results["synchronous"], results["background"]
    ratio = statistics.median(r["held"] for r in sync["rows"]) / max(
        statistics.median(r["held"] for r in back["rows"]), 1e-9
    )
    print(f"\nmain thread held per move: synchronous / background = {ratio:.0f}x")
    print(
        f"scrub over {args.scrub} frames without waiting: synchronous fused "
        f"{sync['scrub_calls']} planes (main thread held {sync['scrub_held']:.1f} s), "
        f"background fused {back['scrub_calls']} (held {back['scrub_held']:.2f} s)"
    )


if __name__ == "__main__":
    main()
