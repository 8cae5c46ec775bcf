"""The client side of a batch's cluster: starting it, its dashboard, the progress bar."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["start_client"]


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
