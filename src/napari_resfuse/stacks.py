"""Lazy readers for image stacks: multi-page TIFF, zarr stores, videos and folders of images.

Every reader is an array-like (``shape``, ``dtype``, ``ndim``, ``__getitem__``) that reads only
the frames an index asks for, opens its file on first use in each process, and pickles as its
path and metadata. So :func:`open_stack` can hand it to :func:`dask.array.from_array`, and the
resulting dask array can travel to Dask workers, which then read their own frames.

A *frame* is one image of the stack: ``(H, W)`` or ``(H, W, 3)``. The stack's leading axes
(time, z, ...) index frames; reading frames ``a`` to ``b`` never reads the others (for a video,
the decoder seeks to the keyframe before ``a``).
"""

from __future__ import annotations

import abc
import json
import math
import threading
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np

from .method.inputs import MIN_SIDE, is_color, spatial_shape

__all__ = [
    "VIDEO_SUFFIXES",
    "FolderStack",
    "TiffStack",
    "VideoStack",
    "as_dask",
    "check_inputs",
    "check_side",
    "check_stack",
    "is_stack",
    "iter_write_blocks",
    "open_stack",
    "stack_range",
    "stack_reader",
]

#: File suffixes read as videos (through imageio-ffmpeg).
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
_TIFF = (".tif", ".tiff")
_ZARR = (".zarr", ".zr3", ".zarr3")


class _FrameReader(abc.ABC):
    """Array-like over the frames of a file. Subclasses set ``shape``, ``dtype`` and
    ``frame_ndim`` and implement ``_read(indices) -> (n, *frame_shape)``."""

    shape: tuple[int, ...]
    dtype: np.dtype
    frame_ndim: int
    path: Path

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handle: Any = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def n_frames(self) -> int:
        return math.prod(self.shape[: self.ndim - self.frame_ndim])

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_lock"] = state["_handle"] = None  # re-opened in the receiving process
        if "_data" in state:
            state["_data"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype=None, copy=None):
        data = self[...]
        return data if dtype is None else data.astype(dtype)

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = next(n for n, k in enumerate(key) if k is Ellipsis)
            fill = (slice(None),) * (self.ndim - len(key) + 1)
            key = key[:i] + fill + key[i + 1 :]
        if any(k is None for k in key):
            raise IndexError(f"{type(self).__name__} does not support np.newaxis in an index")
        key = key + (slice(None),) * (self.ndim - len(key))
        if len(key) > self.ndim:
            raise IndexError(f"too many indices for a stack of shape {self.shape}")
        n_lead = self.ndim - self.frame_ndim
        lead_shape = self.shape[:n_lead]
        flat = np.arange(self.n_frames).reshape(lead_shape)[key[:n_lead]]
        frames = self._read(np.asarray(flat).ravel())
        frames = frames.reshape(np.shape(flat) + frames.shape[1:])
        return frames[(slice(None),) * np.ndim(flat) + key[n_lead:]]

    @abc.abstractmethod
    def _read(self, indices: np.ndarray) -> np.ndarray:
        """The frames at these flat indices, stacked on a new first axis."""


class TiffStack(_FrameReader):
    """The first series of a (multi-page) TIFF file, read page by page."""

    def __init__(self, path: str | Path):
        super().__init__()
        import tifffile

        self.path = Path(path)
        self._data = None
        with tifffile.TiffFile(self.path) as tif:
            series = tif.series[0]
            page_shape = tuple(series.pages[0].shape)
            n_pages = len(series.pages)
            self.shape = tuple(series.shape)
            self.dtype = np.dtype(series.dtype)
        # Frames are the last two axes, plus a last axis of 3 or 4 (colour), as for the engine.
        self.frame_ndim = 3 if is_color(self.shape) else 2
        frame_shape = self.shape[self.ndim - self.frame_ndim :]
        # Pages are frames in the usual stacks; otherwise (one page holding planar colour
        # samples or a volume) the whole series is read once per process.
        self._whole = page_shape != frame_shape or n_pages != self.n_frames

    def _read(self, indices: np.ndarray) -> np.ndarray:
        import tifffile

        with self._lock:
            if self._handle is None:
                self._handle = tifffile.TiffFile(self.path)
            tif = self._handle
            frame_shape = self.shape[self.ndim - self.frame_ndim :]
            if self._whole:
                if self._data is None:
                    self._data = tif.series[0].asarray().reshape((-1, *frame_shape))
                return self._data[indices]
            out = np.empty((len(indices), *frame_shape), self.dtype)
            for n, i in enumerate(indices):
                out[n] = tif.asarray(series=0, key=int(i))
            return out

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
            self._data = None


class VideoStack(_FrameReader):
    """A video file as ``(T, H, W, 3)`` uint8 frames, decoded by imageio-ffmpeg.

    Notes
    -----
    Frames ``a`` to ``b`` are read by seeking to the time ``(a - 1/2) / fps`` (ffmpeg decodes
    from the keyframe before it and drops frames until that time), so the video is assumed to
    have a constant frame rate starting at time 0, which holds for the usual camera and screen
    recordings. The frame count is counted once, by decoding the whole file, when the reader is
    made.
    """

    def __init__(self, path: str | Path):
        super().__init__()
        try:
            import imageio_ffmpeg
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValueError(
                f"reading the video {str(path)!r} needs imageio-ffmpeg: "
                "pip install 'napari-resfuse[video]'"
            ) from exc
        self.path = Path(path)
        reader = imageio_ffmpeg.read_frames(str(self.path), pix_fmt="rgb24")
        try:
            meta = next(reader)
        finally:
            reader.close()
        width, height = meta["size"]
        self.fps = float(meta["fps"])
        n_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(self.path))
        self.shape = (int(n_frames), int(height), int(width), 3)
        self.dtype = np.dtype(np.uint8)
        self.frame_ndim = 3

    def _read_run(self, start: int, count: int) -> np.ndarray:
        import imageio_ffmpeg

        params = ["-ss", f"{(start - 0.5) / self.fps:.6f}"] if start > 0 else None
        frames = np.empty((count, *self.shape[1:]), np.uint8)
        reader = imageio_ffmpeg.read_frames(str(self.path), pix_fmt="rgb24", input_params=params)
        n = 0
        try:
            next(reader)  # metadata
            for raw in reader:
                frames[n] = np.frombuffer(raw, np.uint8).reshape(self.shape[1:])
                n += 1
                if n == count:
                    break
        finally:
            reader.close()
        if n < count:
            raise ValueError(
                f"video {str(self.path)!r}: could read only {n} of frames {start} to "
                f"{start + count - 1}"
            )
        return frames

    def _read(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), *self.shape[1:]), np.uint8)
        if len(indices) == 0:
            return out
        # Read runs of consecutive frames with one seek each.
        breaks = np.flatnonzero(np.diff(indices) != 1) + 1
        for run in np.split(np.arange(len(indices)), breaks):
            first = int(indices[run[0]])
            out[run] = self._read_run(first, len(run))
        return out


class FolderStack(_FrameReader):
    """The images of a folder, sorted by name, as a stack (all of the same shape and dtype)."""

    def __init__(self, path: str | Path):
        super().__init__()
        from .io import IMAGE_SUFFIXES, read_image

        self.path = Path(path)
        self.files = [
            p
            for p in sorted(self.path.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not self.files:
            raise ValueError(f"folder {str(self.path)!r} holds no images")
        first = read_image(self.files[0])
        self.shape = (len(self.files), *first.shape)
        self.dtype = first.dtype
        self.frame_ndim = first.ndim

    def _read(self, indices: np.ndarray) -> np.ndarray:
        from .io import read_image

        out = np.empty((len(indices), *self.shape[1:]), self.dtype)
        for n, i in enumerate(indices):
            image = read_image(self.files[int(i)])
            if image.shape != self.shape[1:] or image.dtype != self.dtype:
                raise ValueError(
                    f"{str(self.files[int(i)])!r} is {image.shape} {image.dtype}, unlike the "
                    f"folder's first image ({self.shape[1:]} {self.dtype})"
                )
            out[n] = image
        return out


def _is_zarr(path: Path) -> bool:
    if path.suffix.lower() in _ZARR:
        return True
    return path.is_dir() and any(
        (path / marker).is_file() for marker in ("zarr.json", ".zarray", ".zgroup")
    )


def _zarr_array(path: Path, component: str | None):
    import zarr

    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        return node
    if component is None:
        arrays = dict(node.arrays())
        if "fused" in arrays:
            component = "fused"
        elif len(arrays) == 1:
            component = next(iter(arrays))
        else:
            raise ValueError(
                f"zarr group {str(path)!r} holds {len(arrays)} arrays "
                f"({', '.join(sorted(arrays)) or 'none'}): name one with component="
            )
    if component not in node:
        raise ValueError(f"zarr group {str(path)!r} has no array {component!r}")
    return node[component]


def is_stack(path: str | Path) -> bool:
    """Whether :func:`open_stack` reads ``path`` as a stack rather than as one image: a zarr
    store, a video, or a TIFF whose first series has more than two axes besides colour (so
    the engine would fuse it plane by plane)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES or _is_zarr(path):
        return True
    if suffix in _TIFF and path.is_file():
        import tifffile

        with tifffile.TiffFile(path) as tif:
            shape = tuple(tif.series[0].shape)
        return len(shape) > (3 if is_color(shape) else 2)
    return False


def stack_reader(path: str | Path, *, component: str | None = None):
    """The lazy array-like for ``path`` (see :func:`open_stack`); zarr gives a ``zarr.Array``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"stack {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if _is_zarr(path):
        return _zarr_array(path, component)
    if path.is_dir():
        return FolderStack(path)
    if suffix in _TIFF:
        return TiffStack(path)
    if suffix in VIDEO_SUFFIXES:
        return VideoStack(path)
    from .io import IMAGE_SUFFIXES

    raise ValueError(
        f"cannot read {str(path)!r} as a stack: expected a multi-page TIFF, a zarr store, a "
        f"video ({', '.join(VIDEO_SUFFIXES)}) or a folder of images ({', '.join(IMAGE_SUFFIXES)})"
    )


def open_stack(path: str | Path, *, frames_per_chunk: int = 1, component: str | None = None):
    """Open a stack lazily as a dask array, chunked by frames.

    Parameters
    ----------
    path : str or path-like
        A multi-page TIFF (its first series; pages are frames), a zarr store (an array, or a
        group: its ``"fused"`` array, its only array, or ``component``), a video file (RGB
        ``uint8`` frames, needs imageio-ffmpeg) or a folder of same-shaped images (sorted by
        name).
    frames_per_chunk : int
        Frames per dask chunk along the last leading axis (other leading axes: one per chunk).
    component : str, optional
        The array to open in a zarr group.

    Returns
    -------
    dask.array.Array
        ``(..., H, W)`` or ``(..., H, W, 3)``; a chunk read reads only its own frames.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not a stack this function can read.
    """
    import dask.array as da

    if isinstance(frames_per_chunk, bool) or not isinstance(frames_per_chunk, int):
        raise ValueError(f"frames_per_chunk must be a positive integer, got {frames_per_chunk!r}")
    if frames_per_chunk < 1:
        raise ValueError(f"frames_per_chunk must be a positive integer, got {frames_per_chunk}")
    reader = stack_reader(path, component=component)
    shape = tuple(reader.shape)
    frame_ndim = getattr(reader, "frame_ndim", None)
    if frame_ndim is None:  # zarr
        frame_ndim = 3 if is_color(shape) else 2
    n_lead = len(shape) - frame_ndim
    chunks = tuple(
        frames_per_chunk if (axis == n_lead - 1) else 1 if axis < n_lead else size
        for axis, size in enumerate(shape)
    )
    name = f"stack-{Path(path).name}-" + _token(Path(path), component, reader)
    return da.from_array(reader, chunks=chunks, name=name, asarray=True, fancy=False)


def _token(path: Path, component: str | None, reader) -> str:
    """Names the dask array by the file and its modification time, so a changed file is a
    new array and two opens of the same file share keys."""
    from dask.base import tokenize

    stat = path.stat()
    stamp = (stat.st_size, stat.st_mtime_ns)
    return tokenize(str(path.resolve()), component, stamp, tuple(reader.shape), str(reader.dtype))


def iter_write_blocks(
    arrays: dict,
    path: Path,
    prefix_ndim: dict[str, int],
    n_lead: int,
    dtypes: dict,
    convert: Callable[[str, np.ndarray], np.ndarray],
    attrs: dict,
    tiff: bool,
) -> Generator[tuple[int, int], None, Path]:
    """Write dask arrays block by block; yields ``(blocks_done, blocks_total)``.

    Each array has ``prefix_ndim[name]`` axes before ``n_lead`` stack axes, which share one
    block grid; the blocks of one grid index are computed together (so a result shared by
    several arrays is computed once). The output is a zarr group (one array per name, chunked
    by block, ``attrs`` under ``"napari_resfuse"``) or, with ``tiff``, a TIFF of the one array
    (held in memory until written). It is built in a temporary sibling renamed to ``path`` at
    the end; an error or closing the generator removes it, so ``path`` is never partial.
    """
    from .io import atomic_path

    first = next(iter(arrays))
    lead_chunks = arrays[first].chunks[prefix_ndim[first] :][:n_lead]
    grid = list(np.ndindex(*(len(c) for c in lead_chunks)))
    starts = [np.cumsum((0, *c)) for c in lead_chunks]
    # An error, or the generator closed (a cancel), removes the temporary output: no partial
    # output at ``path``.
    with atomic_path(path) as tmp:
        if tiff:
            sink = {name: np.empty(arrays[name].shape, dtypes[name]) for name in arrays}
        else:
            sink = _create_zarr(tmp, arrays, dtypes, attrs)
        yield 0, len(grid)
        for done, idx in enumerate(grid, start=1):
            lead = tuple(slice(s[i], s[i + 1]) for s, i in zip(starts, idx, strict=True))
            for name, block in _compute_block(arrays, idx, prefix_ndim, n_lead).items():
                sink[name][(slice(None),) * prefix_ndim[name] + lead] = convert(name, block)
            yield done, len(grid)
        if tiff:
            import tifffile

            (data,) = sink.values()
            tifffile.imwrite(tmp, data)
    return path


def _compute_block(arrays: dict, idx, prefix_ndim: dict, n_lead: int) -> dict[str, np.ndarray]:
    """The block ``idx`` of each array, computed together."""
    import dask

    pieces = {}
    for name, array in arrays.items():
        pre = (0,) * prefix_ndim[name]
        post = (0,) * (array.ndim - len(pre) - n_lead)
        pieces[name] = array.blocks[(*pre, *idx, *post)]
    values = dask.compute(*pieces.values(), scheduler="sync")
    return dict(zip(pieces, values, strict=True))


def _create_zarr(tmp: Path, arrays: dict, dtypes: dict, attrs: dict) -> dict:
    import zarr

    group = zarr.open_group(str(tmp), mode="w")
    group.attrs["napari_resfuse"] = json.loads(json.dumps(attrs, default=str))
    sink = {}
    for name, array in arrays.items():
        chunks = tuple(c[0] for c in array.chunks)
        sink[name] = group.create_array(
            name, shape=array.shape, chunks=chunks, dtype=dtypes[name], fill_value=0
        )
    return sink


# --- checks of stacks that need no pixel values, and their value range --------------------
def as_dask(array, name: str, n_lead: int, planes: int):
    """A dask array with one block per ``planes`` planes and whole frames."""
    import dask.array as da

    shape = tuple(np.shape(array))
    chunks = tuple(
        planes if axis == n_lead - 1 else 1 if axis < n_lead else size
        for axis, size in enumerate(shape)
    )
    if isinstance(array, da.Array):
        return array.rechunk(chunks)
    if isinstance(array, list | tuple):
        array = np.asarray(array)
    if not hasattr(array, "shape") or not hasattr(array, "dtype"):
        raise ValueError(
            f"{name} must be an array (numpy, dask, zarr or a stack reader), got "
            f"{type(array).__name__}"
        )
    return da.from_array(array, chunks=chunks, asarray=True, fancy=False)


def check_stack(name: str, array) -> None:
    """The checks of one stack that need no pixel values: dimensions, dtype, RGBA."""
    if array.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions, got shape {array.shape}")
    if np.dtype(array.dtype).kind not in "uif":
        raise ValueError(
            f"{name} stack has unsupported dtype {array.dtype}: expected an integer or float type"
        )
    if is_color(array.shape) and array.shape[-1] == 4:
        raise ValueError(
            f"{name} stack has 4 channels (RGBA, shape {array.shape}): drop the alpha channel"
        )


def check_side(spatial: tuple[int, ...], what: str = "images") -> None:
    height, width = spatial[-2:]
    if min(height, width) < MIN_SIDE:
        raise ValueError(
            f"{what} of {height} x {width} px are too small for the network: each side must be "
            f"at least {MIN_SIDE} px (conv5_1 has a stride of 32)"
        )


def check_inputs(ir, vis) -> tuple[int, ...]:
    """Check two stacks (array-likes) for fusing; returns their spatial shape ``(..., H, W)``.

    The checks of the engine that need no pixel values: dimensions, dtypes, RGBA, matching
    shapes, the minimum side.
    """
    for name, array in (("infrared", ir), ("visible", vis)):
        check_stack(name, array)
    spatial = spatial_shape(ir.shape)
    if spatial != spatial_shape(vis.shape):
        raise ValueError(
            f"infrared and visible stacks differ in shape: infrared {ir.shape} vs visible "
            f"{vis.shape} (height and width, and any stack axes, must match)"
        )
    check_side(spatial)
    return spatial


def stack_range(name: str, array, compute: Callable | None = None) -> tuple[float, float]:
    """The whole stack's ``(min, max)``: what the engine uses for the stack as one array.

    ``uint8`` is ``(0, 255)`` without reading anything. ``array`` is a dask array; ``compute``
    computes its two reductions (default :func:`dask.compute`; a batch passes its cluster's).
    """
    import dask

    if np.dtype(array.dtype) == np.uint8:
        return (0.0, 255.0)
    lo, hi = (compute or dask.compute)(array.min(), array.max())
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} stack contains NaN or inf values; replace them before fusing")
    if lo == hi:
        raise ValueError(
            f"{name} stack is constant (every value is {lo}): there is nothing to fuse"
        )
    return (lo, hi)
