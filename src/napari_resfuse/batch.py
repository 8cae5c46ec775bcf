"""Batch fusion on Dask: folders of pairs or the frames of long stacks, on a local or remote
cluster.

:func:`run_batch` submits one task per pair (two folders matched by file name) or per block of
frames (two stacks: multi-page TIFF, zarr or video) to a ``distributed`` scheduler: a
``LocalCluster`` it starts (worker processes or threads), or an existing cluster given by its
address. Workers read their own inputs and write their outputs straight into the output folder
(one image per pair, as ``resfuse fuse`` writes it) or zarr store (one chunk per task); the
client only receives a few bytes per task.

Safety and resumption
---------------------
- Each worker builds the network once, when it starts (:class:`ModelPlugin`; the engine keeps it
  in its per-process cache) and uses its GPU when it has one (``device="auto"``).
- Outputs are written atomically: into a temporary folder next to the output, then moved in
  place with :func:`os.replace`, so a crash, a killed worker or a cancel never leaves a
  half-written file under its final name. Zarr chunks are written atomically by zarr.
- A pair's output is recorded with a small JSON sidecar (``OUT/.resfuse/<name>.json``: the
  parameters, the inputs' sizes and modification times, the files written). A later run skips
  pairs whose sidecar matches and whose files are all there; a stack's chunks are skipped when
  the store's parameters match and the chunk exists.
- A task that raises an unexpected error (not a bad input) is retried ``retries`` times; a task
  whose worker dies is re-run on another worker by the scheduler. Bad inputs (``ValueError``,
  ``FileNotFoundError``) fail at once and are listed with their message in the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from distributed import WorkerPlugin

from . import __version__
from .options import FusionOptions

__all__ = [
    "STATE_DIR",
    "BatchSummary",
    "ModelPlugin",
    "find_inputs",
    "output_name",
    "run_batch",
    "start_client",
    "worker_state",
]

#: Hidden folder in the output folder (or zarr store) holding sidecars and temporary files.
STATE_DIR = ".resfuse"

#: Options that do not change the output (how, not what): left out of the resumption key.
_NOT_IN_KEY = ("device", "batch_size")

# Names of the infrared and visible sub-folders looked for in a single INPUT folder.
_IR_NAMES = ("infrared", "ir", "lwir", "thermal", "tir")
_VIS_NAMES = ("visible", "vis", "rgb", "optical", "vi")

# Per-process state of a worker (reported by worker_state()).
_WORKER: dict[str, Any] = {"tasks": 0, "load_error": None, "device": None}


# --------------------------------------------------------------------------------------------
# Inputs


def find_inputs(infrared: str | os.PathLike, visible: str | os.PathLike | None = None):
    """What a batch fuses: ``("pairs", [(name, ir_path, vis_path), ...])`` or
    ``("stacks", (ir_path, vis_path))``.

    Parameters
    ----------
    infrared, visible : path-like
        Two folders of images paired by file name, or two stacks (multi-page TIFF, zarr store,
        video). With ``visible`` omitted, ``infrared`` is a folder holding the two folders, named
        ``infrared``/``visible`` (or ``ir``/``vis``, ``lwir``/``rgb``, ``thermal``/``optical``,
        any case).

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    ValueError
        The inputs are neither two folders nor two stacks.
    """
    from .io import match_pairs
    from .stacks import is_stack

    if visible is None:
        folder = Path(infrared)
        if not folder.is_dir():
            raise FileNotFoundError(f"input folder {str(folder)!r} does not exist")
        infrared, visible = _sub_folders(folder)
    ir, vis = Path(infrared), Path(visible)
    for role, path in (("infrared", ir), ("visible", vis)):
        if not path.exists():
            raise FileNotFoundError(f"{role} input {str(path)!r} does not exist")
    stacks = [is_stack(p) for p in (ir, vis)]
    if all(stacks):
        return "stacks", (ir, vis)
    if ir.is_dir() and vis.is_dir() and not any(stacks):
        return "pairs", match_pairs(ir, vis)
    raise ValueError(
        f"batch inputs must be two folders of images paired by name, or two stacks (multi-page "
        f"TIFF, zarr store, video); got {str(ir)!r} and {str(vis)!r}"
    )


def _sub_folders(folder: Path) -> tuple[Path, Path]:
    subs = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
    found = []
    for names, role in ((_IR_NAMES, "infrared"), (_VIS_NAMES, "visible")):
        match = next((subs[n] for n in names if n in subs), None)
        if match is None:
            raise ValueError(
                f"{str(folder)!r} has no {role} sub-folder (one of {', '.join(names)}); give the "
                "infrared and visible folders (or stacks) as two arguments instead"
            )
        found.append(match)
    return found[0], found[1]


def output_name(name: str, infrared_path: Path, dtype: np.dtype) -> str:
    """The file name ``resfuse fuse`` gives a pair's output in folder mode
    (:func:`napari_resfuse.io.pair_output_name`)."""
    from .io import pair_output_name

    return pair_output_name(name, infrared_path, dtype)


def _stat(path: Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def _options_key(options: FusionOptions) -> dict:
    key = {k: v for k, v in options.as_dict().items() if k not in _NOT_IN_KEY}
    weights = Path(str(options.weights)).expanduser()
    if options.weights != "random" and weights.is_file():  # a state_dict file: its identity
        key["weights_file"] = _stat(weights)
    return key


# --------------------------------------------------------------------------------------------
# Worker side


class ModelPlugin(WorkerPlugin):
    """Builds the network once in each worker process, when the worker starts.

    A ``distributed`` worker plugin (registered by :func:`run_batch`): it sets the number of
    torch threads (for worker processes sharing a machine), gives each worker of a machine with
    several GPUs its own GPU (``device="auto"``: GPU ``worker number mod GPU count``), and loads
    the network into the engine's per-process cache, so every task of the worker reuses it; a
    worker restarted after a crash loads it again. A loading error (weights not available) is
    kept for :func:`worker_state`; the tasks then fail with the same error, listed in the
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

    def teardown(self, worker=None) -> None:
        pass

    def load(self, worker_name=None) -> None:
        import torch

        from .method.backbones import get_feature_network

        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        _WORKER["device"] = _worker_device(self.options.device, worker_name, gpus)
        opts = _worker_options(self.options)
        try:
            get_feature_network(
                opts.backbone, opts.weights, seed=opts.seed, layers=opts.layers, device=opts.device
            )
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
    """This process's batch state: networks built, tasks run, torch threads, pid (for tests and
    diagnostics: ``client.run(worker_state)``)."""
    import torch

    from .method import backbones

    return {
        "pid": os.getpid(),
        "networks": len(backbones._CACHE),
        "tasks": _WORKER["tasks"],
        "torch_threads": torch.get_num_threads(),
        "load_error": _WORKER["load_error"],
        "device": _WORKER["device"],
    }


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _pair_task(
    name: str,
    ir_path: Path,
    vis_path: Path,
    out_dir: Path,
    options: FusionOptions,
    key: dict,
    intermediates: Path | None,
    fmt: str,
) -> dict:
    """Fuse one pair and write it as ``resfuse fuse`` does, atomically; returns a small record."""
    from .cli.fuse import write_result
    from .io import output_dtype, read_image
    from .method.fuse import fuse

    _WORKER["tasks"] += 1
    start = time.perf_counter()
    options = _worker_options(options)
    try:
        ir, vis = read_image(ir_path), read_image(vis_path)
        result = fuse(ir, vis, options)
    except (ValueError, FileNotFoundError) as exc:  # bad input: retrying cannot help
        return {"name": name, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    dtype = output_dtype(ir.dtype, vis.dtype)
    final = out_dir / output_name(name, ir_path, dtype)
    token = uuid.uuid4().hex
    tmp = out_dir / STATE_DIR / "tmp" / token
    tmp_inter = None if intermediates is None else intermediates / STATE_DIR / "tmp" / token
    try:
        tmp.mkdir(parents=True)
        written = write_result(result, tmp / final.name, dtype, tmp_inter, fmt)
        # Intermediates first, the fused image next, the sidecar last: a sidecar exists only
        # when every file it lists is in place.
        moved = []
        for path in written[1:]:
            dest = intermediates / path.name
            os.replace(path, dest)
            moved.append(dest)
        if tmp_inter is not None:
            params_json = tmp_inter / f"{final.stem}_params.json"
            if params_json.exists():
                os.replace(params_json, intermediates / params_json.name)
        os.replace(written[0], final)
        record = {
            "key": key,
            "outputs": [[str(p), p.stat().st_size] for p in [final, *moved]],
            "params": result.params,
            "seconds": time.perf_counter() - start,
        }
        _atomic_write_text(
            out_dir / STATE_DIR / f"{name}.json", json.dumps(record, indent=1, default=str)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if tmp_inter is not None:
            shutil.rmtree(tmp_inter, ignore_errors=True)
    return {"name": name, "status": "done", "output": str(final), "seconds": record["seconds"]}


def _frames_task(
    name: str,
    lead: tuple[slice, ...],
    ir_reader,
    vis_reader,
    store: Path,
    options: FusionOptions,
    dtype: str,
) -> dict:
    """Fuse the frames ``lead`` of two stacks and write them as one zarr chunk."""
    import zarr

    from .io import from_unit_range
    from .lazy import fuse_planes

    _WORKER["tasks"] += 1
    start = time.perf_counter()
    options = _worker_options(options)
    try:
        result = fuse_planes(ir_reader[lead], vis_reader[lead], options)
    except (ValueError, FileNotFoundError) as exc:
        return {"name": name, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    array = zarr.open_array(str(store / "fused"), mode="r+").with_config(
        {"write_empty_chunks": True}  # a chunk on disk means "done", even when it is all zeros
    )
    array[lead] = from_unit_range(result["fused"], np.dtype(dtype))
    return {"name": name, "status": "done", "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------------------------
# Client side


@dataclass
class BatchSummary:
    """What a batch did.

    Attributes
    ----------
    out : pathlib.Path
        The output folder or zarr store.
    mode : str
        ``"pairs"`` or ``"stacks"``.
    done, skipped : list of str
        Names of the tasks fused now, and of those already written with the same parameters
        (pairs: their names; stacks: ``"frames a-b"``).
    failed : dict
        Name -> error message.
    seconds : float
        Wall time of the run (cluster start excluded).
    workers : int
        Workers of the cluster.
    dashboard : str or None
        The Dask dashboard's address, when it runs.
    """

    out: Path
    mode: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 0
    dashboard: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    @property
    def total(self) -> int:
        return len(self.done) + len(self.skipped) + len(self.failed)

    def report(self, max_errors: int = 20) -> str:
        """A few lines for the terminal: counts, rate, and each failure with its error."""
        unit = "pairs" if self.mode == "pairs" else "frame blocks"
        rate = len(self.done) / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{unit}: {len(self.done)} fused, {len(self.skipped)} skipped (already written), "
            f"{len(self.failed)} failed; {self.seconds:.1f} s on {self.workers} worker(s)"
            + (f", {rate:.2f} {unit}/s" if self.done else ""),
            f"output: {self.out}",
        ]
        for n, (name, error) in enumerate(sorted(self.failed.items())):
            if n == max_errors:
                lines.append(f"... and {len(self.failed) - max_errors} more failures")
                break
            lines.append(f"failed {name}: {error}")
        return "\n".join(lines)


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def start_client(scheduler: str = "processes", workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for a batch, closed (with its local cluster) on exit.

    Parameters
    ----------
    scheduler : str
        ``"processes"`` (a ``LocalCluster`` of ``workers`` single-threaded worker processes),
        ``"threads"`` (one worker process-less cluster with ``workers`` threads, sharing one
        network), or the address of a running scheduler (``tcp://host:8786``).
    workers : int, optional
        Local workers (processes) or threads; default: the number of CPU cores, or one per GPU.

    Yields
    ------
    distributed.Client
    """
    import dask
    from distributed import Client, LocalCluster

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers}")
    if scheduler in ("processes", "threads"):
        n = workers or _default_workers()
        dashboard = ":0"  # a free port (without bokeh: health checks only, no dashboard)
        if scheduler == "processes":
            with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ()}):
                cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=dashboard,
                )
        else:
            cluster = LocalCluster(
                n_workers=1,
                threads_per_worker=n,
                processes=False,
                dashboard_address=dashboard,
            )
        with cluster, Client(cluster) as client:
            yield client
    elif "://" in scheduler or ":" in scheduler:
        if workers is not None:
            raise ValueError(
                "workers applies to a local cluster; a running cluster at "
                f"{scheduler!r} has its own workers"
            )
        with Client(scheduler) as client:
            yield client
    else:
        raise ValueError(
            f"scheduler must be 'processes', 'threads' or a scheduler address such as "
            f"'tcp://host:8786', got {scheduler!r}"
        )


def _worker_environ() -> dict:
    """Dask's environment for new worker processes, without ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets it (to 64 KiB) to give memory back to the system sooner; setting it at all turns
    off glibc's dynamic mmap threshold, so every large tensor of the network is a fresh mmap
    with its page faults: a 128 x 160 pair took 0.28 s instead of 0.18 s on one CPU thread
    (measured here). The other variables (one OpenMP/BLAS thread) stay; :class:`ModelPlugin`
    sets torch's threads.
    """
    import dask

    environ = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    return {k: v for k, v in environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}


def _default_workers() -> int:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.device_count()
    except ImportError:  # pragma: no cover
        pass
    return os.cpu_count() or 1


def _dashboard(client) -> str | None:
    """The dashboard's address. Without bokeh the scheduler still serves HTTP (health checks)
    but no dashboard, so a local cluster's link is given only when bokeh is installed; a remote
    scheduler's link is given as is."""
    try:
        services = client.scheduler_info().get("services", {})
    except Exception:
        return None
    if "dashboard" not in services:
        return None
    local = type(client.cluster).__name__ == "LocalCluster" if client.cluster else False
    if local and not _has_bokeh():
        return None
    return client.dashboard_link


def _matches(sidecar: Path, key: dict) -> bool:
    """Whether a pair was written with these parameters and its files are all there."""
    try:
        record = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return False
    if record.get("key") != key:
        return False
    for path, size in record.get("outputs", []):
        p = Path(path)
        if not p.is_file() or p.stat().st_size != size:
            return False
    return True


def _pair_jobs(pairs, out: Path, options, intermediates, fmt):
    """(name, task args, key) for every pair, and the names already done."""
    common = {
        "version": __version__,
        "options": _options_key(options),
        "intermediates": None if intermediates is None else str(intermediates.resolve()),
        "format": fmt if intermediates is not None else None,
    }
    jobs, skipped = [], []
    for name, ir_path, vis_path in pairs:
        key = {**common, "inputs": [_stat(ir_path), _stat(vis_path)]}
        if _matches(out / STATE_DIR / f"{name}.json", key):
            skipped.append(name)
            continue
        args = (name, ir_path, vis_path, out, options, key, intermediates, fmt)
        jobs.append((name, _pair_task, args))
    return jobs, skipped


def _stack_range(client, name: str, reader) -> tuple[float, float]:
    import dask.array as da

    if np.dtype(reader.dtype) == np.uint8:
        return (0.0, 255.0)
    array = da.from_array(reader, chunks=(1, *reader.shape[1:]), asarray=True, fancy=False)
    lo, hi = (float(v) for v in client.compute([array.min(), array.max()], sync=True))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} stack contains NaN or inf values; replace them before fusing")
    if lo == hi:
        raise ValueError(
            f"{name} stack is constant (every value is {lo}): there is nothing to fuse"
        )
    return (lo, hi)


def _stack_jobs(client, paths, out: Path, options, frames_per_task: int, overwrite: bool):
    """Create (or reopen) the output store; (name, task, args) for every block not written."""
    import zarr

    from .io import output_dtype
    from .lazy import _check_inputs, _is_color
    from .stacks import stack_reader

    ir_reader, vis_reader = (stack_reader(p) for p in paths)
    spatial = _check_inputs(ir_reader, vis_reader)
    if options.value_range is None:
        ranges = (
            _stack_range(client, "infrared", ir_reader),
            _stack_range(client, "visible", vis_reader),
        )
        options = options.replace(value_range=ranges)
    dtype = output_dtype(ir_reader.dtype, vis_reader.dtype)
    rgb = _is_color(vis_reader.shape) and (options.color or "ycbcr") == "ycbcr"
    shape = spatial + ((3,) if rgb else ())
    n_lead = len(spatial) - 2
    chunks = tuple(
        frames_per_task if axis == n_lead - 1 else 1 if axis < n_lead else size
        for axis, size in enumerate(shape)
    )
    key = {
        "version": __version__,
        "options": _options_key(options),
        "inputs": [_stat(p) for p in paths],
        "chunks": list(chunks),
        "dtype": str(dtype),
    }
    key = json.loads(json.dumps(key, default=str))
    reuse = False
    if out.exists():
        try:
            previous = zarr.open_group(str(out), mode="r").attrs.get("napari_resfuse", {})
        except Exception:
            previous = None
        if previous is None and not overwrite:
            raise ValueError(
                f"output {str(out)!r} exists and is not a store written by resfuse batch; "
                "choose another output or pass --overwrite"
            )
        reuse = previous is not None and previous.get("key") == key and not overwrite
    if not reuse:
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        group = zarr.open_group(str(out), mode="w")
        group.create_array("fused", shape=shape, chunks=chunks, dtype=dtype, fill_value=0)
        group.attrs["napari_resfuse"] = {"key": key, "params": _options_key(options)}
    array = zarr.open_array(str(out / "fused"), mode="r")
    jobs, skipped = [], []
    grid = [range(-(-shape[a] // chunks[a])) for a in range(n_lead)]
    for idx in np.ndindex(*(len(g) for g in grid)):
        lead = tuple(
            slice(i * chunks[a], min((i + 1) * chunks[a], shape[a])) for a, i in enumerate(idx)
        )
        name = "frames " + ",".join(
            f"{s.start}" if s.stop - s.start == 1 else f"{s.start}-{s.stop - 1}" for s in lead
        )
        coords = (*idx, *(0,) * (len(shape) - n_lead))
        if reuse and (out / "fused" / array.metadata.encode_chunk_key(coords)).is_file():
            skipped.append(name)
            continue
        args = (name, lead, ir_reader, vis_reader, out, options, str(dtype))
        jobs.append((name, _frames_task, args))
    return jobs, skipped


def run_batch(
    infrared: str | os.PathLike,
    visible: str | os.PathLike | None = None,
    *,
    out: str | os.PathLike,
    options: FusionOptions | None = None,
    scheduler: str = "processes",
    workers: int | None = None,
    client=None,
    retries: int = 2,
    frames_per_task: int | None = None,
    save_intermediates: str | os.PathLike | None = None,
    intermediate_format: str = "tif",
    torch_threads: int | None = None,
    overwrite: bool = False,
    progress: bool | Callable[[int, int], Any] = True,
    **overrides: Any,
) -> BatchSummary:
    """Fuse every pair of two folders, or every frame of two stacks, on a Dask cluster.

    Parameters
    ----------
    infrared, visible : path-like
        Two folders of images paired by file name, or two stacks (multi-page TIFF, zarr store,
        video); or one folder holding ``infrared``/``visible`` sub-folders (see
        :func:`find_inputs`).
    out : path-like
        Pairs: the output folder (one image per pair, named and typed as by ``resfuse fuse``).
        Stacks: a zarr store (a group whose array ``fused`` holds the fused stack in the inputs'
        bit depth, one chunk per task).
    options : FusionOptions, optional
        Fusion options; keyword arguments override single fields.
    scheduler : str
        ``"processes"``, ``"threads"`` or a scheduler address (see :func:`start_client`).
    workers : int, optional
        Local worker processes (or threads).
    client : distributed.Client, optional
        Use this client instead of starting one (``scheduler`` and ``workers`` are then unused).
    retries : int
        Retries of a task that raised an unexpected error.
    frames_per_task : int, optional
        Stacks: frames per task and per zarr chunk (default: ``options.batch_size``, or 4).
    save_intermediates : path-like, optional
        Pairs: also write the base, detail and weight maps there, as ``resfuse fuse`` does.
    intermediate_format : {"tif", "png"}
        Their format.
    torch_threads : int, optional
        Torch threads per local worker process (default: CPU cores / workers).
    overwrite : bool
        Fuse everything again, ignoring what a previous run wrote.
    progress : bool or callable
        True: a progress bar on stderr; a callable is called as ``progress(done, total)``.

    Returns
    -------
    BatchSummary

    Raises
    ------
    FileNotFoundError, ValueError
        Bad inputs or options (before anything is submitted).
    """
    opts = options if options is not None else FusionOptions()
    if not isinstance(opts, FusionOptions):
        raise ValueError(f"options must be a FusionOptions, got {type(opts).__name__}")
    if overrides:
        opts = opts.replace(**overrides)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
    fpt = (opts.batch_size or 4) if frames_per_task is None else frames_per_task
    if isinstance(fpt, bool) or not isinstance(fpt, int) or fpt < 1:
        raise ValueError(f"frames_per_task must be a positive integer, got {frames_per_task!r}")
    if intermediate_format not in ("tif", "png"):
        raise ValueError(f"intermediate_format must be 'tif' or 'png', got {intermediate_format!r}")
    # Absolute paths: workers elsewhere (a remote cluster on a shared disk) have another cwd.
    mode, inputs = find_inputs(
        Path(infrared).absolute(), None if visible is None else Path(visible).absolute()
    )
    out = Path(out).absolute()
    intermediates = None if save_intermediates is None else Path(save_intermediates).absolute()
    if mode == "stacks" and intermediates is not None:
        raise ValueError(
            "save_intermediates applies to folders of pairs; for stacks use "
            "napari_resfuse.lazy.fuse_lazy and save_lazy(outputs=...)"
        )
    if mode == "pairs":
        if out.suffix.lower() in (".png", ".tif", ".tiff", ".jpg", ".zarr"):
            raise ValueError(f"output {str(out)!r} must be a folder when fusing folders of pairs")
        if out.exists() and not out.is_dir():
            raise ValueError(f"output {str(out)!r} exists and is not a folder")

    with contextlib.ExitStack() as stack:
        if client is None:
            if torch_threads is None and scheduler == "processes":
                # Local worker processes share the machine's cores.
                torch_threads = max(1, (os.cpu_count() or 1) // (workers or _default_workers()))
            client = stack.enter_context(start_client(scheduler, workers))
        elif scheduler != "processes" or workers is not None:
            raise ValueError("give either client or scheduler/workers, not both")
        return _run(
            client,
            mode,
            inputs,
            out,
            opts,
            retries=retries,
            frames_per_task=fpt,
            intermediates=intermediates,
            fmt=intermediate_format,
            torch_threads=torch_threads,
            overwrite=overwrite,
            progress=progress,
        )


def _run(
    client,
    mode: str,
    inputs,
    out: Path,
    opts: FusionOptions,
    *,
    retries: int,
    frames_per_task: int,
    intermediates: Path | None,
    fmt: str,
    torch_threads: int | None,
    overwrite: bool,
    progress,
) -> BatchSummary:
    from distributed import as_completed

    summary = BatchSummary(out=out, mode=mode)
    summary.workers = len(client.nthreads())
    summary.dashboard = _dashboard(client)
    if mode == "pairs":
        out.mkdir(parents=True, exist_ok=True)
        state = out / STATE_DIR
        if overwrite and state.is_dir():
            for sidecar in state.glob("*.json"):
                sidecar.unlink()
        (state / "tmp").mkdir(parents=True, exist_ok=True)
        shutil.rmtree(state / "tmp", ignore_errors=True)  # leftovers of a crashed run
        (state / "tmp").mkdir(parents=True, exist_ok=True)
        if intermediates is not None:
            intermediates.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(intermediates / STATE_DIR, ignore_errors=True)
        jobs, summary.skipped = _pair_jobs(inputs, out, opts, intermediates, fmt)
    else:
        jobs, summary.skipped = _stack_jobs(client, inputs, out, opts, frames_per_task, overwrite)

    start = time.perf_counter()
    total = len(jobs) + len(summary.skipped)
    bar = _bar(progress, total, len(summary.skipped), summary.dashboard)
    if jobs:
        client.register_plugin(ModelPlugin(opts, torch_threads), name=ModelPlugin.name)
    futures = {}
    try:
        for name, task, args in jobs:
            future = client.submit(task, *args, retries=retries, pure=False, key=_key(name))
            futures[future] = name
        for future in as_completed(futures):
            name = futures.pop(future)
            if future.status == "finished":
                record = future.result()
                if record["status"] == "done":
                    summary.done.append(name)
                else:
                    summary.failed[name] = record["error"]
            else:
                exc = future.exception()
                summary.failed[name] = f"{type(exc).__name__}: {exc}"
            future.release()
            bar(1)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        bar(None)
        # Every task has ended: what is left in the temporary folders is the partial output of
        # attempts that died; the retried attempts wrote their own.
        for folder in (out, intermediates):
            if mode == "pairs" and folder is not None:
                shutil.rmtree(folder / STATE_DIR / "tmp", ignore_errors=True)
                _remove_empty(folder / STATE_DIR)
    summary.seconds = time.perf_counter() - start
    return summary


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (sidecars) or gone
        folder.rmdir()


def _key(name: str) -> str:
    return f"resfuse-{name.replace(' ', '-')}-{uuid.uuid4().hex[:8]}"


def _bar(progress, total: int, initial: int, dashboard: str | None) -> Callable:
    """A progress callback: ``step(1)`` after each task, ``step(None)`` at the end."""
    if callable(progress):
        done = [initial]

        def step(n):
            if n is not None:
                done[0] += n
                progress(done[0], total)

        return step
    if not progress:
        return lambda n: None
    from tqdm import tqdm

    if dashboard:
        print(f"Dask dashboard: {dashboard}", file=sys.stderr)
    elif not _has_bokeh():
        print("(pip install 'bokeh>=3.1' for the Dask dashboard)", file=sys.stderr)
    bar = tqdm(total=total, initial=initial, desc="resfuse batch", unit="task", file=sys.stderr)

    def step(n):
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return step
