"""Layer data that never makes the viewer wait: planes are fused in a background thread.

napari reads a layer's data where it slices: in the main thread by default. A lazy fused layer
whose data were a plain dask array would then freeze the viewer for one engine call on every
new plane (seconds on a CPU). :class:`BackgroundPlanes` is the data of the lazy layers instead:

- indexing it the way napari slices (an int or a slice for every axis of the layer) returns at
  once: the result when this plane has been computed (a small store of recent planes),
  otherwise a placeholder, and the plane is queued for the background thread; any other index
  (``data[5]``, which napari also uses to read the dtype) gives the dask array's lazy slice;
- one daemon thread computes the queued planes, oldest request first, keeping only the newest
  request of each layer, so planes that the slider passed over while another was being fused
  are never fused;
- when a plane is ready, its layers are refreshed in the main thread (through Qt's event loop,
  :func:`superqt.utils.ensure_main_thread`) and napari slices again, this time from the store.

The placeholder is the layer's last computed plane when it has the same shape (the view stays
as it was, as with napari's asynchronous slicing), else zeros; meanwhile the layer is marked as
loading (napari's layer list shows its loading animation). A plane that fails (say, NaN values
in one frame) is reported once as a napari error notification and shows zeros; it is not
retried until the layers are made again.

``np.asarray(data)`` (napari's "Save layer") computes the whole array, blocking; ``data.array``
is the dask array behind, for scripts that want to compute (``data.array[t].compute()``).

This module needs a running Qt application for the refresh (the plugin's widgets and
:func:`napari_resfuse._napari.lazy_layers.fuse_layers_lazy` use it only when there is one).
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

__all__ = ["BackgroundPlanes", "computable", "qt_app_running"]

#: Planes kept per layer by default, and the most bytes they may take together (the newest
#: plane is always kept).
KEEP = 8
MAX_BYTES = 256 << 20


def qt_app_running() -> bool:
    """Whether a Qt application exists in this process (an event loop to refresh layers in)."""
    try:
        from qtpy.QtCore import QCoreApplication
    except Exception:  # no Qt binding: plain ViewerModel scripting
        return False
    return QCoreApplication.instance() is not None


def computable(data: Any) -> Any:
    """A layer's data as something whose indexing computes: the dask array behind
    :class:`BackgroundPlanes`, any other data as they are."""
    return data.array if isinstance(data, BackgroundPlanes) else data


def _normalise(key: Any) -> tuple[Hashable, ...] | None:
    """A hashable form of an index made of ints and slices (what napari slices with); None for
    anything else (Ellipsis, None, arrays)."""
    items = key if isinstance(key, tuple) else (key,)
    out: list[Hashable] = []
    for item in items:
        if isinstance(item, slice):
            parts = (item.start, item.stop, item.step)
            if not all(p is None or isinstance(p, int | np.integer) for p in parts):
                return None
            out.append(("slice", *(None if p is None else int(p) for p in parts)))
        elif isinstance(item, int | np.integer) and not isinstance(item, bool | np.bool_):
            out.append(int(item))
        else:
            return None
    return tuple(out)


def _in_main_thread(function: Callable[..., Any], *args: Any) -> None:
    """Run ``function(*args)`` in the Qt main thread (now, when called from it)."""
    from superqt.utils import ensure_main_thread

    ensure_main_thread(function)(*args)


class BackgroundPlanes:
    """A dask array as napari layer data: indexing never waits for a computation.

    Parameters
    ----------
    array : dask.array.Array
        The data (a lazy fusion output).
    keep : int
        Computed planes (index results) kept for this layer; going back to one of them shows it
        at once.
    max_bytes : int
        The most bytes the kept planes may take together (the newest one is always kept).
    slice_ndim : int, optional
        The number of indices in napari's slicing keys: the layer's dimensions (``ndim - 1``
        for an RGB layer, whose last axis napari does not slice). Default ``array.ndim``.
    call_in_main_thread : callable, optional
        ``f(function, *args)`` runs ``function(*args)`` in the GUI thread; Qt's by default.

    Attributes
    ----------
    array : dask.array.Array
        The data, for computing (``data.array[t].compute()``).
    computed : int
        Index results computed in the background so far (a layer refresh after a cached
        engine call counts too; :attr:`napari_resfuse.lazy.LazyFusion.calls` counts fusions).
    """

    def __init__(
        self,
        array: Any,
        *,
        keep: int = KEEP,
        max_bytes: int = MAX_BYTES,
        slice_ndim: int | None = None,
        call_in_main_thread: Callable[..., Any] = _in_main_thread,
    ):
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.array = array
        self.slice_ndim = array.ndim if slice_ndim is None else slice_ndim
        self.keep = keep
        self.max_bytes = max_bytes
        self.computed = 0
        self._call_in_main_thread = call_in_main_thread
        self._lock = threading.Lock()
        self._store: OrderedDict[Hashable, np.ndarray | Exception] = OrderedDict()
        self._last: np.ndarray | None = None
        self._wanted: Hashable | None = None  # the index napari asked for last
        self._shown: Hashable | None = None  # the last index answered with its result
        self._layers: weakref.WeakSet = weakref.WeakSet()
        self._closed = False

    # -- the array protocol napari needs -------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.array.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """The whole array, computed here (blocking)."""
        out = np.asarray(self.array.compute())
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return (
            f"BackgroundPlanes(shape={self.shape}, dtype={self.dtype}, kept={len(self._store)}, "
            f"pending={self.pending})"
        )

    def __getitem__(self, key: Any) -> Any:
        """napari's slicing (an int or slice per layer axis): the computed result for ``key`` if
        ready, else a placeholder, and the plane is queued. Any other index (fewer indices,
        Ellipsis, arrays): the dask array's lazy slice, as the dask data would give."""
        norm = _normalise(key)
        if norm is None or len(norm) != self.slice_ndim:
            return self.array[key]
        with self._lock:
            hit = self._store.get(norm)
            self._wanted = norm
            if hit is not None:  # computed (or failed: shown as zeros, not retried)
                self._store.move_to_end(norm)
                self._shown = norm
                if isinstance(hit, np.ndarray):
                    self._last = hit
                    return hit
        template = self.array[key]  # dask slicing: shape and dtype only, nothing computed
        if hit is None and not self._closed:
            _FETCHER.submit(self, key, norm)
            self._call_in_main_thread(self._set_loading, True)
        return self._placeholder(template.shape, np.dtype(template.dtype), failed=hit is not None)

    # -- state -----------------------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """Whether the index napari asked for last has not been shown yet (it is being computed,
        or computed and its layer not refreshed yet)."""
        with self._lock:
            return self._wanted != self._shown

    def attach(self, layer: Any) -> None:
        """Refresh ``layer`` (while its data are this object) when a plane it asked for is ready."""
        self._layers.add(layer)

    def cancel_pending(self) -> None:
        """Drop the queued request, if any (the layer left the viewer); a later read queues
        again."""
        _FETCHER.discard(self)

    def close(self) -> None:
        """Stop computing for these data for good (their layer was given new data)."""
        self._closed = True
        _FETCHER.discard(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def _placeholder(self, shape: tuple[int, ...], dtype: np.dtype, failed: bool) -> np.ndarray:
        last = self._last
        if not failed and last is not None and last.shape == shape and last.dtype == dtype:
            return last
        return np.zeros(shape, dtype)

    def _showing_layers(self) -> list[Any]:
        return [layer for layer in list(self._layers) if layer.data is self]

    def _set_loading(self, loading: bool) -> None:
        # napari's layer list shows a loading animation for layers whose slicing state is not
        # loaded (private API: without it, there is only no animation).
        for layer in self._showing_layers():
            state = getattr(layer, "_slicing_state", None)
            if state is not None and hasattr(state, "_set_loaded"):
                state._set_loaded(not loading)

    # -- background side -------------------------------------------------------------------------
    def _compute(self, key: Any) -> np.ndarray:
        # The synchronous scheduler: the block's inputs are read and fused in this thread.
        return np.asarray(self.array[key].compute(scheduler="synchronous"))

    def _deliver(self, norm: Hashable, value: np.ndarray | Exception) -> None:
        """Keep a computed result (in the background thread) and refresh in the main thread."""
        with self._lock:
            self.computed += 1
            self._store[norm] = value
            self._store.move_to_end(norm)
            self._trim()
            wanted = norm == self._wanted
        if wanted:
            self._call_in_main_thread(self._on_ready, norm, value)

    def _trim(self) -> None:
        def size(value):
            return value.nbytes if isinstance(value, np.ndarray) else 0

        while len(self._store) > self.keep or (
            len(self._store) > 1 and sum(size(v) for v in self._store.values()) > self.max_bytes
        ):
            self._store.popitem(last=False)

    def _on_ready(self, norm: Hashable, value: np.ndarray | Exception) -> None:
        """In the main thread: show the plane (napari slices again and finds it stored)."""
        layers = self._showing_layers()
        if not layers:
            if len(self._layers):  # its layers hold other data now: nothing to show, ever
                self.close()
            return
        for layer in layers:
            layer.refresh()
        self._set_loading(False)
        if isinstance(value, Exception):
            from napari.utils.notifications import show_error

            names = ", ".join(repr(layer.name) for layer in layers)
            show_error(f"napari-resfuse: could not compute {names} at this plane: {value}")


class _Fetcher:
    """The one background thread: computes queued requests, the newest per layer data."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: OrderedDict[int, tuple[BackgroundPlanes, Any, Hashable]] = OrderedDict()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def submit(self, planes: BackgroundPlanes, key: Any, norm: Hashable) -> None:
        with self._cond:
            if self._stopping:
                return
            self._queue.pop(id(planes), None)  # an older request of the same data is dropped
            self._queue[id(planes)] = (planes, key, norm)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="napari-resfuse planes", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def discard(self, planes: BackgroundPlanes) -> None:
        with self._cond:
            self._queue.pop(id(planes), None)

    def stop(self, timeout: float = 120.0) -> None:
        """Drop the queue and wait for the computation in progress (at interpreter exit: a
        thread still inside torch then would abort the process)."""
        with self._cond:
            self._queue.clear()
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                _, (planes, key, norm) = self._queue.popitem(last=False)
            if planes.closed:
                continue
            try:
                value: np.ndarray | Exception = planes._compute(key)
            except Exception as exc:  # reported in the main thread, next to the layer
                value = exc
            try:
                planes._deliver(norm, value)
            except Exception:  # the application is gone (viewer closed while computing)
                continue


_FETCHER = _Fetcher()
atexit.register(_FETCHER.stop)
