"""The worker side of a batch: the model plugin and the two kinds of task."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from distributed import WorkerPlugin

from ..options import FusionOptions

#: Hidden folder in the output folder (or zarr store) holding sidecars and temporary files.
STATE_DIR = ".resfuse"

# Per-process state of a worker (reported by worker_state()).
_WORKER: dict[str, Any] = {"tasks": 0, "load_error": None, "device": None}


def _network(options: FusionOptions):
    """The engine's cached network for these options (built on first use)."""
    from ..method.backbones import get_feature_network

    return get_feature_network(
        options.backbone,
        options.weights,
        seed=options.seed,
        layers=options.layers,
        device=options.device,
    )


class ModelPlugin(WorkerPlugin):
    """Builds the network once in each worker process, when the worker starts.

    A ``distributed`` worker plugin (registered by :func:`napari_resfuse.batch.run_batch`): it
    sets the number of torch threads (for worker processes sharing a machine), gives each
    worker of a machine with several GPUs its own GPU (``device="auto"``: GPU ``worker number
    mod GPU count``), and loads the network into the engine's per-process cache, so every task
    of the worker reuses it; a worker restarted after a crash loads it again. A loading error
    is kept for :func:`worker_state`; the tasks then fail with the same error, listed in the
    summary.
    """

    name = "napari-resfuse-model"
    idempotent = False

    def __init__(self, options: FusionOptions, torch_threads: int | None = None):
        super().__init__()
        self.options = options
        self.torch_threads = torch_threads

    async def setup(self, worker=None) -> None:
        name = getattr(worker, "name", None)
        await asyncio.get_running_loop().run_in_executor(None, self.load, name)

    def load(self, worker_name=None) -> None:
        import torch

        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        _WORKER["device"] = _worker_device(self.options.device, worker_name, gpus)
        try:
            _network(_worker_options(self.options))
            _WORKER["load_error"] = None
        except Exception as exc:  # reported by the tasks, which fail with this message
            _WORKER["load_error"] = f"{type(exc).__name__}: {exc}"


def _worker_device(device: str, worker_name, gpus: int) -> str | None:
    """The GPU of worker ``worker_name`` when ``device`` is "auto" and the machine has several
    (LocalCluster names its workers 0, 1, ...); None: keep ``device``."""
    if device != "auto" or gpus < 2 or worker_name is None:
        return None
    tail = str(worker_name).rsplit("-", 1)[-1]
    index = int(tail) if tail.isdigit() else zlib.crc32(str(worker_name).encode())
    return f"cuda:{index % gpus}"


def _worker_options(options: FusionOptions) -> FusionOptions:
    device = _WORKER.get("device")
    return options.replace(device=device) if device and options.device == "auto" else options


def worker_state() -> dict[str, Any]:
    """This process's batch state: networks the engine keeps built (its cache), tasks run,
    torch threads, pid (for tests and diagnostics: ``client.run(worker_state)``)."""
    import torch

    from ..method.backbones import cached_networks

    return {
        "pid": os.getpid(),
        "networks": cached_networks(),
        "tasks": _WORKER["tasks"],
        "torch_threads": torch.get_num_threads(),
        "load_error": _WORKER["load_error"],
        "device": _WORKER["device"],
    }


def _failed(name: str, exc: Exception) -> dict:
    return {"name": name, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def pair_task(
    name: str,
    ir_path: Path,
    vis_path: Path,
    out_dir: Path,
    options: FusionOptions,
    key: dict,
    intermediates: Path | None,
    fmt: str,
    alignment=None,
) -> dict:
    """Fuse one pair and write it as ``resfuse fuse`` does; returns a small record.

    The files are written into a staging folder (``OUT/.resfuse/tmp/<token>``) and moved in
    place only when all are complete: intermediates first, the fused image next, the sidecar
    (``OUT/.resfuse/<name>.json``, the record of what was written) last.
    """
    import json

    from .. import io
    from ..method.fuse import fuse

    _WORKER["tasks"] += 1
    start = time.perf_counter()
    options = _worker_options(options)
    try:
        _network(options)
        ir, vis = io.read_image(ir_path), io.read_image(vis_path)
        registered = {} if alignment is None else alignment.fuse_kwargs
        result = fuse(ir, vis, options, **registered)
    except (ValueError, FileNotFoundError) as exc:  # bad input: retrying cannot help
        return _failed(name, exc)
    dtype = io.output_dtype(ir.dtype, vis.dtype)
    final = out_dir / io.output_name(name, ir_path, dtype)
    token = uuid.uuid4().hex
    tmp = out_dir / STATE_DIR / "tmp" / token
    tmp_inter = None if intermediates is None else intermediates / STATE_DIR / "tmp" / token
    try:
        written = io.write_result(result, tmp / final.name, dtype, tmp_inter, fmt)
        moved = []
        for path in written[1:]:
            os.replace(path, intermediates / path.name)
            moved.append(intermediates / path.name)
        if tmp_inter is not None:
            params = tmp_inter / f"{final.stem}_params.json"
            os.replace(params, intermediates / params.name)
        os.replace(written[0], final)
        record = {
            "key": key,
            "outputs": [[str(p), p.stat().st_size] for p in [final, *moved]],
            "params": result.params,
            "seconds": time.perf_counter() - start,
        }
        io.write_text_atomic(
            out_dir / STATE_DIR / f"{name}.json", json.dumps(record, indent=1, default=str)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if tmp_inter is not None:
            shutil.rmtree(tmp_inter, ignore_errors=True)
    return {"name": name, "status": "done", "output": str(final), "seconds": record["seconds"]}


def frames_task(
    name: str,
    lead: tuple[slice, ...],
    ir_reader,
    vis_reader,
    store: Path,
    options: FusionOptions,
    dtype: str,
    alignment=None,
) -> dict:
    """Fuse the frames ``lead`` of two stacks (aligned by ``alignment``, a
    :class:`~napari_resfuse.lazy.Alignment`, when given) and write them as one zarr chunk."""
    import zarr

    from ..io import from_unit_range
    from ..lazy import fuse_planes

    _WORKER["tasks"] += 1
    start = time.perf_counter()
    options = _worker_options(options)
    try:
        _network(options)
        result = fuse_planes(ir_reader[lead], vis_reader[lead], options, alignment)
    except (ValueError, FileNotFoundError) as exc:
        return _failed(name, exc)
    array = zarr.open_array(str(store / "fused"), mode="r+").with_config(
        {"write_empty_chunks": True}  # a chunk on disk means "done", even when it is all zeros
    )
    array[lead] = from_unit_range(result["fused"], np.dtype(dtype))
    return {"name": name, "status": "done", "seconds": time.perf_counter() - start}
