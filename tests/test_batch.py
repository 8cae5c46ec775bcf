"""resfuse batch on a LocalCluster of two worker processes (loopback only).

Small pairs, seeded random weights and two shallow levels keep the network cheap. Failures are
injected in the workers by a worker plugin that wraps an engine function there (the test's
monkeypatching does not reach other processes); "first attempt" is recorded by a marker file,
so the retried attempt on any worker succeeds.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cloudpickle
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

distributed = pytest.importorskip("distributed")

from distributed import Client, LocalCluster, WorkerPlugin  # noqa: E402

from napari_resfuse.batch import STATE_DIR, find_inputs, run_batch, worker_state  # noqa: E402
from napari_resfuse.cli import main  # noqa: E402
from napari_resfuse.io import from_unit_range  # noqa: E402
from napari_resfuse.lazy import fuse_lazy  # noqa: E402

from .conftest import textured_pair  # noqa: E402

# The plugins below travel to the workers by value (the workers need not import this file).
cloudpickle.register_pickle_by_value(sys.modules[__name__])

FAST = {"weights": "random", "layers": ("conv1", "conv2_1")}
FAST_ARGS = ["--weights", "random", "--layers", "conv1,conv2_1", "-q"]
NAMES = ("p0", "p1", "p2", "p3")


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """pairs/infrared and pairs/visible: three uint8 PNG pairs and one uint16 TIFF pair."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "infrared").mkdir()
    (root / "visible").mkdir()
    for i, name in enumerate(NAMES):
        ir, vis = textured_pair(seed=i)
        if name == "p3":
            tifffile.imwrite(root / "infrared" / f"{name}.tif", ir.astype(np.uint16) * 257)
            tifffile.imwrite(root / "visible" / f"{name}.tif", vis.astype(np.uint16) * 257)
        else:
            iio.imwrite(root / "infrared" / f"{name}.png", ir)
            iio.imwrite(root / "visible" / f"{name}.png", vis)
    return root


@pytest.fixture(scope="module")
def reference(pairs, tmp_path_factory):
    """The local ``resfuse fuse`` run over the same folders, with one torch thread like the
    workers: the same float result, so the files must be the same bytes (with another thread
    count the summation order differs in the last bit and a pixel may round the other way)."""
    import torch

    out = tmp_path_factory.mktemp("reference")
    argv = ["fuse", str(pairs / "infrared"), str(pairs / "visible"), "-o", str(out), *FAST_ARGS]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


class _Inject(WorkerPlugin):
    """Wraps ``module.attr`` in every worker: for the pair ``name``, ``action`` runs after the
    wrapped call (``"raise"``, ``"raise-once"`` or ``"exit-once"``)."""

    def __init__(self, module: str, attr: str, name: str, action: str, markers: Path):
        self.module, self.attr, self.target = module, attr, name
        self.action, self.markers = action, Path(markers)
        self.name = f"inject-{attr}-{name}"

    def setup(self, worker=None):
        import importlib

        module = importlib.import_module(self.module)
        original = getattr(module, self.attr)
        original = getattr(original, "__wrapped__", original)
        target, action, markers = self.target, self.action, self.markers

        def wrapped(*args, **kwargs):
            value = original(*args, **kwargs)
            if not any(isinstance(a, Path) and a.stem == target for a in args):
                return value
            attempt = markers / f"{target}-{len(list(markers.glob(f'{target}-*')))}"
            attempt.touch()
            if action == "raise" or (action == "raise-once" and attempt.name.endswith("-0")):
                raise RuntimeError(f"injected failure for {target}")
            if action == "exit-once" and attempt.name.endswith("-0"):
                os._exit(1)  # the worker process dies mid-task, its files half written
            return value

        wrapped.__wrapped__ = original
        setattr(module, self.attr, wrapped)

    def teardown(self, worker=None):
        import importlib

        module = importlib.import_module(self.module)
        current = getattr(module, self.attr)
        setattr(module, self.attr, getattr(current, "__wrapped__", current))


def _visible_files(folder: Path) -> list[str]:
    """Every file under ``folder`` except the sidecars: what a user could mistake for output."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not (p.parent.name == STATE_DIR and p.suffix == ".json")
    )


def test_find_inputs_one_folder_with_sub_folders(pairs):
    mode, found = find_inputs(pairs)
    assert mode == "pairs"
    assert [name for name, _, _ in found] == list(NAMES)
    with pytest.raises(ValueError, match="no infrared sub-folder"):
        find_inputs(pairs / "visible")


def test_batch_equals_local_run_and_second_run_skips(client, pairs, reference, tmp_path):
    out = tmp_path / "out"
    summary = run_batch(pairs, out=out, client=client, progress=False, **FAST)
    assert summary.ok, summary.report()
    assert sorted(summary.done) == list(NAMES)
    assert summary.workers == 2
    # Bit for bit the files of the local run, under the same names (p3 as 16-bit TIFF).
    expected = _files(reference)
    assert sorted(expected) == ["p0.png", "p1.png", "p2.png", "p3.tif"]
    assert _files(out) == expected
    # Each worker built the network once, and both worked.
    states = client.run(worker_state).values()
    assert [s["networks"] for s in states] == [1, 1]
    assert [s["torch_threads"] for s in states] == [1, 1]
    assert all(s["tasks"] >= 1 for s in states)
    sidecar = json.loads((out / STATE_DIR / "p0.json").read_text())
    assert sidecar["params"]["weights_id"] == "random:seed=0"

    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    again = run_batch(pairs, out=out, client=client, progress=False, **FAST)
    assert again.done == [] and sorted(again.skipped) == list(NAMES)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == stamps

    # Different parameters, or a changed input: fused again.
    changed = run_batch(pairs, out=out, client=client, progress=False, kernel_size=15, **FAST)
    assert sorted(changed.done) == list(NAMES)
    ir0 = pairs / "infrared" / "p0.png"
    os.utime(ir0, ns=(ir0.stat().st_atime_ns, ir0.stat().st_mtime_ns + 10**9))
    once = run_batch(pairs, out=out, client=client, progress=False, kernel_size=15, **FAST)
    assert once.done == ["p0"] and sorted(once.skipped) == ["p1", "p2", "p3"]


def test_injected_failure_is_retried(client, pairs, reference, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    # The batch task reads its inputs with napari_resfuse.io.read_image (looked up at each call).
    plugin = _Inject("napari_resfuse.io", "read_image", "p1", "raise-once", markers)
    client.register_plugin(plugin)
    try:
        summary = run_batch(pairs, out=tmp_path / "out", client=client, progress=False, **FAST)
    finally:
        client.unregister_worker_plugin(plugin.name)
    assert summary.ok, summary.report()
    # p1's infrared image read: failed, then retried (the visible one is read after it).
    assert sorted(p.name for p in markers.iterdir()) == ["p1-0", "p1-1", "p1-2"]
    assert _files(tmp_path / "out") == _files(reference)


def test_killed_worker_task_is_rerun_and_no_partial_file(client, pairs, reference, tmp_path):
    """The worker dies after writing p2's files into the temporary folder, before moving them
    in place; the task runs again on a (restarted) worker and the outputs are complete."""
    markers = tmp_path / "markers"
    markers.mkdir()
    plugin = _Inject("napari_resfuse.io", "write_result", "p2", "exit-once", markers)
    client.register_plugin(plugin)
    try:
        summary = run_batch(pairs, out=tmp_path / "out", client=client, progress=False, **FAST)
    finally:
        client.unregister_worker_plugin(plugin.name)
        client.wait_for_workers(2)
    assert summary.ok, summary.report()
    assert sorted(p.name for p in markers.iterdir()) == ["p2-0", "p2-1"]
    assert _files(tmp_path / "out") == _files(reference)
    # The dead attempt's temporary files were cleared by the run; nothing half-written remains.
    assert _visible_files(tmp_path / "out") == ["p0.png", "p1.png", "p2.png", "p3.tif"]


def test_persistent_failure_is_listed_and_leaves_no_file(client, pairs, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    plugin = _Inject("napari_resfuse.io", "write_result", "p1", "raise", markers)
    client.register_plugin(plugin)
    try:
        summary = run_batch(
            pairs, out=tmp_path / "out", client=client, retries=1, progress=False, **FAST
        )
    finally:
        client.unregister_worker_plugin(plugin.name)
    assert sorted(summary.done) == ["p0", "p2", "p3"]
    assert list(summary.failed) == ["p1"]
    assert "RuntimeError: injected failure for p1" in summary.failed["p1"]
    assert "failed p1: RuntimeError" in summary.report()
    assert len(list(markers.iterdir())) == 2  # first attempt and one retry
    # p1's files were written to the temporary folder, never moved: no p1 output, no sidecar.
    assert _visible_files(tmp_path / "out") == ["p0.png", "p2.png", "p3.tif"]
    assert not (tmp_path / "out" / STATE_DIR / "p1.json").exists()
    # The next run fuses only the failed pair.
    again = run_batch(pairs, out=tmp_path / "out", client=client, progress=False, **FAST)
    assert again.done == ["p1"] and len(again.skipped) == 3


def test_bad_input_fails_without_retry(client, tmp_path):
    for sub in ("ir", "vis"):
        (tmp_path / sub).mkdir()
    ir, vis = textured_pair()
    iio.imwrite(tmp_path / "ir" / "good.png", ir)
    iio.imwrite(tmp_path / "vis" / "good.png", vis)
    iio.imwrite(tmp_path / "ir" / "flat.png", np.full_like(ir, 7))
    iio.imwrite(tmp_path / "vis" / "flat.png", vis)
    summary = run_batch(tmp_path / "ir", tmp_path / "vis", out=tmp_path / "out", client=client,
                        progress=False, **FAST)  # fmt: skip
    assert summary.done == ["good"]
    assert "infrared image is constant" in summary.failed["flat"]


def test_stacks_batch_into_zarr(client, tmp_path):
    """Frames of two multi-page TIFF stacks, two frames per task, one of them black."""
    import zarr

    ir = np.stack([textured_pair(seed=s)[0] for s in range(5)]).astype(np.uint16) * 250
    vis = np.stack([textured_pair(seed=s)[1] for s in range(5)]).astype(np.uint16) * 250
    ir[2] = 0  # a constant frame inside a non-constant stack
    tifffile.imwrite(tmp_path / "ir.tif", ir)
    tifffile.imwrite(tmp_path / "vis.tif", vis)
    out = tmp_path / "fused.zarr"
    summary = run_batch(tmp_path / "ir.tif", tmp_path / "vis.tif", out=out, client=client,
                        frames_per_task=2, progress=False, **FAST)  # fmt: skip
    assert summary.ok, summary.report()
    assert sorted(summary.done) == ["frames 0-1", "frames 2-3", "frames 4"]
    written = zarr.open_group(str(out), mode="r")["fused"]
    assert written.dtype == np.uint16 and written.chunks == (2, 64, 96)
    # The whole stack's value range, as the engine uses for the stack as one array.
    lazy = fuse_lazy(ir, vis, planes_per_block=2, **FAST)
    np.testing.assert_array_equal(written[:], from_unit_range(lazy.fused.compute(), np.uint16))
    again = run_batch(tmp_path / "ir.tif", tmp_path / "vis.tif", out=out, client=client,
                      frames_per_task=2, progress=False, **FAST)  # fmt: skip
    assert again.done == [] and len(again.skipped) == 3


def test_lazy_arrays_compute_on_worker_processes(client):
    """The lazy graph (its block engine included) travels to worker processes."""
    ir = np.stack([textured_pair(seed=s)[0] for s in range(4)])
    vis = np.stack([textured_pair(seed=s)[1] for s in range(4)])
    lazy = fuse_lazy(ir, vis, planes_per_block=2, **FAST)
    remote = client.compute(lazy.fused[1:3], sync=True)
    np.testing.assert_array_equal(remote, lazy.fused[1:3].compute(scheduler="sync"))


def test_workers_of_a_multi_gpu_machine_get_their_own_gpu():
    from napari_resfuse.batch import _worker_device

    assert [_worker_device("auto", n, 4) for n in (0, 1, 5)] == ["cuda:0", "cuda:1", "cuda:1"]
    assert _worker_device("auto", "tcp-worker-3", 2) == "cuda:1"
    assert _worker_device("auto", 1, 1) is None  # one GPU: "auto" finds it
    assert _worker_device("cpu", 1, 4) is None  # an explicit device is kept


def test_local_workers_start_without_dask_malloc_trim_threshold():
    """Dask's MALLOC_TRIM_THRESHOLD_ makes every large tensor a fresh mmap (a third slower);
    the local cluster of resfuse batch leaves it out and keeps the one-thread BLAS settings."""
    import dask

    from napari_resfuse.batch import _worker_environ

    default = dask.config.get("distributed.nanny.pre-spawn-environ")
    assert "MALLOC_TRIM_THRESHOLD_" in default  # what this guards against
    environ = _worker_environ()
    assert "MALLOC_TRIM_THRESHOLD_" not in environ
    assert environ == {k: v for k, v in default.items() if k != "MALLOC_TRIM_THRESHOLD_"}
