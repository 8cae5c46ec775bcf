"""Batch fusion on Dask: folders of pairs or the frames of long stacks, on a local or remote
cluster.

:func:`run_batch` submits one task per pair (two folders paired by
:func:`napari_resfuse.io.find_pairs`) or per block of frames (two stacks: multi-page TIFF, zarr
or video) to a ``distributed`` scheduler: a ``LocalCluster`` it starts (worker processes or
threads), or an existing cluster given by its address. Workers read their own inputs and write
their outputs straight into the output folder (one image per pair, as ``resfuse fuse`` writes
it) or zarr store (one chunk per task); the client only receives a few bytes per task.

Safety and resumption
---------------------
- Inputs are never written: an output that is an input (or, for a store, holds one) is
  refused before anything starts, and so are weights that cannot be loaded.
- Each worker builds the network once, when it starts (:class:`ModelPlugin`; the engine keeps it
  in its per-process cache) and uses its GPU when it has one (``device="auto"``).
- Outputs are written atomically: into a staging folder (``OUT/.resfuse/tmp``), then moved in
  place with :func:`os.replace`, so a crash, a killed worker or a cancel never leaves a
  half-written file under its final name. Zarr chunks are written atomically by zarr.
- A pair's output is recorded with a small JSON sidecar (``OUT/.resfuse/<name>.json``: the
  parameters, the inputs' sizes and modification times, the files written). A later run skips
  pairs whose sidecar matches and whose files are all there; a stack's chunks are skipped when
  the store's parameters match and the chunk exists.
- ``overwrite`` deletes only what a batch wrote: the sidecars (pairs; the images are then
  written again over the old ones) or the ``fused`` array of a store marked as written by
  ``resfuse batch`` (stacks). Any other existing store is refused, never deleted.
- A task that raises an unexpected error (not a bad input) is retried ``retries`` times; a task
  whose worker dies is re-run on another worker by the scheduler. Bad inputs (``ValueError``,
  ``FileNotFoundError``) and images without a partner fail at once and are listed with their
  message in the summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..io import IMAGE_SUFFIXES, check_not_inputs, check_writable_folder, find_pairs
from ..options import FusionOptions
from ._cluster import _bar, _dashboard, _default_workers, _worker_environ, start_client
from ._worker import (
    STATE_DIR,
    ModelPlugin,
    _worker_device,
    frames_task,
    pair_task,
    worker_state,
)

__all__ = [
    "STATE_DIR",
    "BatchSummary",
    "ModelPlugin",
    "find_inputs",
    "run_batch",
    "start_client",
    "worker_state",
]

# Re-exported for tests and diagnostics.
_ = (_worker_device, _worker_environ)

#: Options that do not change the output (how, not what): left out of the resumption key.
_NOT_IN_KEY = ("device", "batch_size")

#: The attribute of a zarr store written by resfuse batch (its marker and resumption key).
_STORE_MARK = "napari_resfuse"


def find_inputs(infrared: str | os.PathLike, visible: str | os.PathLike | None = None):
    """What a batch fuses: ``("pairs", Pairs)`` or ``("stacks", (ir_path, vis_path))``.

    Parameters
    ----------
    infrared, visible : path-like
        Two folders of images paired by :func:`napari_resfuse.io.find_pairs`, or two stacks
        (multi-page TIFF, zarr store, video). With ``visible`` omitted, ``infrared`` is a
        folder holding the two folders (``infrared``/``visible``, ``ir``/``vis``,
        ``lwir``/``rgb``, ``thermal``/``optical``, ..., any case).

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    ValueError
        The inputs are neither two folders nor two stacks.
    """
    from ..stacks import is_stack

    if visible is None:
        return "pairs", find_pairs(infrared)
    ir, vis = Path(infrared), Path(visible)
    for role, path in (("infrared", ir), ("visible", vis)):
        if not path.exists():
            raise FileNotFoundError(f"{role} input {str(path)!r} does not exist")
    stacks = [is_stack(p) for p in (ir, vis)]
    if all(stacks):
        return "stacks", (ir, vis)
    if ir.is_dir() and vis.is_dir() and not any(stacks):
        return "pairs", find_pairs(ir, vis)
    raise ValueError(
        f"batch inputs must be two folders of images paired by name, or two stacks (multi-page "
        f"TIFF, zarr store, video); got {str(ir)!r} and {str(vis)!r}"
    )


def _stat(path: Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def _options_key(options: FusionOptions) -> dict:
    key = {k: v for k, v in options.as_dict().items() if k not in _NOT_IN_KEY}
    weights = Path(str(options.weights)).expanduser()
    if options.weights != "random" and weights.is_file():  # a state_dict file: its identity
        key["weights_file"] = _stat(weights)
    return key


def _check_weights(options: FusionOptions) -> None:
    """Load the network once in this process (the engine's public loader), so that weights
    which cannot be used fail before a cluster starts rather than in every task."""
    if options.weights == "random":
        return  # always available
    from ..method.backbones import get_feature_network

    try:
        get_feature_network(
            options.backbone, options.weights, seed=options.seed, layers=options.layers
        )
    except (ValueError, FileNotFoundError):
        raise
    except Exception as exc:  # an engine error that is not yet a clear one
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        raise ValueError(f"weights {options.weights!r} cannot be loaded: {reason}") from exc


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


def _pair_jobs(pairs, out: Path, options, intermediates, fmt, align):
    """(name, task args, key) for every pair, and the names already done."""
    common = {
        "version": __version__,
        "options": _options_key(options),
        "registration": None if align is None else align.key,
        "intermediates": None if intermediates is None else str(intermediates.resolve()),
        "format": fmt if intermediates is not None else None,
    }
    jobs, skipped = [], []
    for name, ir_path, vis_path in pairs:
        key = {**common, "inputs": [_stat(ir_path), _stat(vis_path)]}
        if _matches(out / STATE_DIR / f"{name}.json", key):
            skipped.append(name)
            continue
        args = (name, ir_path, vis_path, out, options, key, intermediates, fmt, align)
        jobs.append((name, pair_task, args))
    return jobs, skipped


def _frames(reader):
    """A stack reader as a dask array of one frame per chunk (for reductions on a cluster)."""
    import dask.array as da

    chunks = (1, *reader.shape[1:])
    return da.from_array(reader, chunks=chunks, asarray=True, fancy=False)


def _own_store(out: Path):
    """The zarr group at ``out`` when a batch wrote it (it carries the marker), None when
    ``out`` does not exist; anything else is refused: a batch never deletes what it did not
    write."""
    import zarr

    if not out.exists():
        return None
    try:
        group = zarr.open_group(str(out), mode="r")
        if _STORE_MARK in group.attrs:
            return group
    except Exception:  # not a zarr group at all
        pass
    raise ValueError(
        f"output {str(out)!r} exists and is not a store written by resfuse batch; choose "
        "another output (--overwrite replaces only what resfuse batch wrote)"
    )


def _stack_jobs(
    client, paths, out: Path, options, frames_per_task: int, overwrite: bool, alignment
):
    """Create (or reopen) the output store; (name, task, args) for every block not written."""
    import zarr

    from ..io import output_dtype
    from ..lazy import fuse_lazy, stack_range
    from ..stacks import stack_reader

    ir_reader, vis_reader = (stack_reader(p) for p in paths)
    # The engine's own checks of two stacks, and the fused shape; nothing is read or fused.
    probe = options if options.value_range is not None else options.replace(value_range=(0, 1))
    registered = {} if alignment is None else alignment.fuse_kwargs
    lazy = fuse_lazy(ir_reader, vis_reader, probe, **registered)
    shape, n_lead = tuple(lazy.fused.shape), len(lazy.shape) - 2
    if options.value_range is None:

        def compute(*values):
            return client.compute(list(values), sync=True)

        ranges = tuple(
            stack_range(name, _frames(reader), compute)
            for name, reader in (("infrared", ir_reader), ("visible", vis_reader))
        )
        options = options.replace(value_range=ranges)
    dtype = output_dtype(ir_reader.dtype, vis_reader.dtype)
    chunks = tuple(
        frames_per_task if axis == n_lead - 1 else 1 if axis < n_lead else size
        for axis, size in enumerate(shape)
    )
    key = {
        "version": __version__,
        "options": _options_key(options),
        "inputs": [_stat(p) for p in paths],
        "registration": None if alignment is None else alignment.key,
        "chunks": list(chunks),
        "dtype": str(dtype),
    }
    key = json.loads(json.dumps(key, default=str))
    group = _own_store(out)
    reuse = group is not None and group.attrs[_STORE_MARK].get("key") == key and not overwrite
    if not reuse:
        # Only the array a batch wrote is replaced; nothing else in the store is touched.
        group = zarr.open_group(str(out), mode="a")
        group.create_array(
            "fused", shape=shape, chunks=chunks, dtype=dtype, fill_value=0, overwrite=True
        )
        group.attrs[_STORE_MARK] = {"key": key, "params": _options_key(options)}
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
        args = (name, lead, ir_reader, vis_reader, out, options, str(dtype), alignment)
        jobs.append((name, frames_task, args))
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
    registration=None,
    grid: str = "visible",
    crop: str | None = "overlap",
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
    registration : None, "auto", Registration or path, optional
        Align each infrared image (frame) to its visible one first, as
        :func:`~napari_resfuse.fuse` does: a :class:`~napari_resfuse.register.Registration` or
        a registration file is one rig for every pair or frame (checked against the first
        pair's, or the stacks', shapes before anything starts; a pair of other shapes fails
        alone); ``"auto"`` registers each pair (stacks: once, on the first frames).
    grid, crop :
        As for :func:`~napari_resfuse.fuse`, with a registration.

    Returns
    -------
    BatchSummary

    Raises
    ------
    FileNotFoundError, ValueError
        Bad inputs or options (before anything is submitted).
    """
    opts = FusionOptions.coerce(options, **overrides)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
    fpt = (opts.batch_size or 4) if frames_per_task is None else frames_per_task
    if isinstance(fpt, bool) or not isinstance(fpt, int) or fpt < 1:
        raise ValueError(f"frames_per_task must be a positive integer, got {frames_per_task!r}")
    if intermediate_format not in ("tif", "png"):
        raise ValueError(f"intermediate_format must be 'tif' or 'png', got {intermediate_format!r}")
    # Absolute paths: workers elsewhere (a remote cluster on a shared disk) have another cwd.
    infrared = Path(infrared).absolute()
    mode, inputs = find_inputs(infrared, None if visible is None else Path(visible).absolute())
    out = Path(out).absolute()
    intermediates = None if save_intermediates is None else Path(save_intermediates).absolute()
    if mode == "pairs":
        sources = [infrared, inputs.infrared_dir, inputs.visible_dir]
        for what, folder in (("output", out), ("save_intermediates", intermediates)):
            if folder is not None:
                check_not_inputs(folder, sources, what=what)
    else:
        check_not_inputs(out, inputs, holds=True)
        _own_store(out)  # a store (or folder) a batch did not write is refused now
    if mode == "stacks" and intermediates is not None:
        raise ValueError(
            "save_intermediates applies to folders of pairs; for stacks use "
            "napari_resfuse.lazy.fuse_lazy and save_lazy(outputs=...)"
        )
    if mode == "pairs":
        if out.suffix.lower() in (*IMAGE_SUFFIXES, ".zarr"):
            raise ValueError(f"output {str(out)!r} must be a folder when fusing folders of pairs")
        if out.exists() and not out.is_dir():
            raise ValueError(f"output {str(out)!r} exists and is not a folder")

    align = None
    if registration is not None:  # checked now, before any work
        from ..alignment import Alignment

        if mode == "pairs":
            align = Alignment.for_pairs(registration, inputs, grid=grid, crop=crop)
        else:
            from ..stacks import stack_reader

            readers = [stack_reader(p) for p in inputs]
            align = Alignment.for_stacks(registration, *readers, grid=grid, crop=crop)
    _check_weights(opts)  # once, here, before any cluster starts
    for folder in (out if mode == "pairs" else out.parent, intermediates):
        if folder is not None:
            check_writable_folder(folder)  # an unwritable place fails now, not in every task

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
            align=align,
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
    align,
) -> BatchSummary:
    from distributed import as_completed

    summary = BatchSummary(out=out, mode=mode)
    summary.workers = len(client.nthreads())
    summary.dashboard = _dashboard(client)
    if mode == "pairs":
        summary.failed.update(inputs.unmatched_items())
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
        jobs, summary.skipped = _pair_jobs(inputs, out, opts, intermediates, fmt, align)
    else:
        jobs, summary.skipped = _stack_jobs(
            client, inputs, out, opts, frames_per_task, overwrite, align
        )

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
