"""BackgroundPlanes without a viewer: indexing answers at once, the background thread computes.

The main-thread hand-off is replaced by a recorder, so these run without Qt; each test waits
for the recorded "ready" hand-off (a queue with a timeout), never for a fixed time.
"""

from __future__ import annotations

import queue
import threading

import dask.array as da
import numpy as np
import pytest

from napari_resfuse._napari.background import BackgroundPlanes, _normalise, computable

TIMEOUT = 60


class Source:
    """A (6, 4, 5) float32 stack whose reads are recorded; reads of ``hold`` wait for
    ``release``, reads of ``fail`` raise."""

    shape = (6, 4, 5)
    dtype = np.dtype(np.float32)
    ndim = 3

    def __init__(self, hold=None, fail=None):
        self.data = np.arange(np.prod(self.shape), dtype=np.float32).reshape(self.shape) + 1
        self.reads: list[int] = []
        self.hold, self.fail = hold, fail
        self.entered, self.release = threading.Event(), threading.Event()

    def __getitem__(self, key):
        if key[0].stop == key[0].start:  # dask reading an empty slice for the array's type
            return self.data[key]
        plane = key[0].start
        self.reads.append(plane)
        if plane == self.fail:
            raise ValueError(f"plane {plane} is broken")
        if plane == self.hold:
            self.entered.set()
            self.release.wait(TIMEOUT)
        return self.data[key]


class Recorder:
    """Stands in for the Qt main thread: keeps every hand-off, runs none."""

    def __init__(self):
        self.ready: queue.Queue = queue.Queue()
        self.loading = 0

    def __call__(self, function, *args):
        if function.__name__ == "_on_ready":
            self.ready.put(args)
        else:
            self.loading += 1

    def next_ready(self):
        return self.ready.get(timeout=TIMEOUT)


# ``planes[t, :, :]``: an index per axis, the way napari slices (``planes[t]`` is a lazy slice).
def _planes(source, **kwargs):
    recorder = Recorder()
    array = da.from_array(source, chunks=(1, 4, 5), asarray=True, fancy=False)
    return BackgroundPlanes(array, call_in_main_thread=recorder, **kwargs), recorder


def test_first_read_is_a_placeholder_then_the_result():
    source = Source()
    planes, recorder = _planes(source)
    first = planes[2, :, :]
    np.testing.assert_array_equal(first, np.zeros((4, 5), np.float32))
    assert planes.pending
    assert recorder.loading == 1  # the layer is marked as loading
    norm, value = recorder.next_ready()
    assert norm == _normalise((2, slice(None), slice(None)))
    np.testing.assert_array_equal(value, source.data[2])
    np.testing.assert_array_equal(planes[2, :, :], source.data[2])  # now from the store
    assert not planes.pending
    # Until another plane is ready, the last one stands in for it (same shape).
    np.testing.assert_array_equal(planes[3, :, :], source.data[2])
    recorder.next_ready()
    np.testing.assert_array_equal(planes[3, :, :], source.data[3])
    assert source.reads == [2, 3]
    assert planes.computed == 2


def test_requests_made_while_computing_keep_only_the_newest():
    source = Source(hold=0)
    planes, recorder = _planes(source)
    planes[0, :, :]
    assert source.entered.wait(TIMEOUT)  # plane 0 is being read in the background
    for t in (1, 2, 3):
        planes[t, :, :]
    source.release.set()
    norm, _ = recorder.next_ready()
    assert norm == _normalise(
        (3, slice(None), slice(None))
    )  # plane 0 was not wanted any more: no hand-off for it
    assert source.reads == [0, 3]
    np.testing.assert_array_equal(planes[3, :, :], source.data[3])
    np.testing.assert_array_equal(planes[0, :, :], source.data[0])  # computed, so kept


def test_a_failure_is_handed_over_once_and_not_retried():
    source = Source(fail=4)
    planes, recorder = _planes(source)
    planes[4, :, :]
    _, value = recorder.next_ready()
    assert isinstance(value, ValueError) and "plane 4 is broken" in str(value)
    again = planes[4, :, :]
    np.testing.assert_array_equal(again, np.zeros((4, 5), np.float32))
    assert not planes.pending
    assert source.reads == [4]
    assert recorder.ready.empty()


def test_the_store_keeps_the_newest_planes():
    source = Source()
    planes, recorder = _planes(source, keep=2)
    for t in (0, 1, 2):
        planes[t, :, :]
        recorder.next_ready()
    planes[0, :, :]  # forgotten: computed again
    recorder.next_ready()
    planes[2, :, :]  # kept
    assert source.reads == [0, 1, 2, 0]
    with pytest.raises(ValueError, match="keep"):
        BackgroundPlanes(planes.array, keep=0)


def test_a_closed_planes_computes_nothing():
    source = Source(hold=0)
    planes, _ = _planes(source)
    other, other_recorder = _planes(Source())
    planes[0, :, :]
    assert source.entered.wait(TIMEOUT)
    planes[1, :, :]
    planes.close()
    source.release.set()
    other[5, :, :]  # the thread goes on with other layers' planes
    other_recorder.next_ready()
    assert source.reads == [0]
    assert planes.closed


def test_array_protocol_and_blocking_paths():
    source = Source()
    planes, recorder = _planes(source)
    assert planes.shape == (6, 4, 5) and planes.ndim == 3 and len(planes) == 6
    assert planes.dtype == np.float32 and planes.nbytes == 6 * 4 * 5 * 4
    np.testing.assert_array_equal(np.asarray(planes), source.data)  # the whole array, computed
    # Not napari's slicing (fewer indices, arrays): the dask array's lazy slice, read on demand.
    reads = len(source.reads)
    lazy_plane = planes[2]
    assert isinstance(lazy_plane, da.Array) and lazy_plane.dtype == np.float32
    assert len(source.reads) == reads
    np.testing.assert_array_equal(lazy_plane, source.data[2])
    np.testing.assert_array_equal(planes[[1, 4]], source.data[[1, 4]])
    assert computable(planes) is planes.array
    data = np.zeros(3)
    assert computable(data) is data
    assert recorder.ready.empty()


def test_normalise_basic_indices_only():
    assert _normalise((1, slice(2, 3))) == (1, ("slice", 2, 3, None))
    assert _normalise(np.int64(2)) == (2,)
    assert _normalise((1, Ellipsis)) is None
    assert _normalise(slice(np.int64(0), 1)) == (("slice", 0, 1, None),)
    assert _normalise([1, 2]) is None
    assert _normalise((np.array([True, False]),)) is None
