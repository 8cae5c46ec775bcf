"""Writing files safely: one atomic writer, and the check that an output is never an input."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = [
    "PARTIAL_MARK",
    "OutputIsInputError",
    "atomic_path",
    "check_not_inputs",
    "check_writable_folder",
    "os_error_text",
    "write_text_atomic",
]

#: Part of the name of every temporary file the package writes (``.NAME.partial-XXXXXXXX.EXT``,
#: next to the final file): what a crash can leave behind, recognisable and hidden.
PARTIAL_MARK = ".partial-"


class OutputIsInputError(ValueError):
    """An output path resolves to one of the inputs (or a folder holding them)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path in ``path``'s folder that replaces ``path`` (:func:`os.replace`) when
    the block ends without an error; on an error the temporary file is removed and an older
    ``path`` is left as it was. The temporary name keeps the suffix (writers pick the format
    from it) and starts with a dot: ``.NAME.partial-XXXXXXXX.EXT``.

    The temporary path may also become a folder (a zarr store): it then replaces an older
    folder ``path`` in two renames (the old one is moved aside, then deleted), and an error
    removes the temporary folder. A folder is never replaced by a file.

    >>> with atomic_path("out/fused.png") as tmp:  # doctest: +SKIP
    ...     write_somehow(tmp)
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}{PARTIAL_MARK}{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield tmp
        _move_into_place(tmp, path)
    finally:
        _remove(tmp)


def _move_into_place(tmp: Path, path: Path) -> None:
    if tmp.is_dir() and path.is_dir() and not path.is_symlink():
        old = path.with_name(f".{path.name}{PARTIAL_MARK}old-{uuid.uuid4().hex[:8]}")
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old, path)  # put the old one back
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a text file (UTF-8) atomically (:func:`atomic_path`); returns its path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _real(path: Path) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


def _same(a: Path, b: Path) -> bool:
    if _real(a) == _real(b):
        return True
    try:  # hard links, bind mounts
        return os.path.samefile(a, b)
    except OSError:
        return False


def _within(inner: Path, outer: Path) -> bool:
    inner_real, outer_real = _real(inner), _real(outer)
    return inner_real == outer_real or inner_real.startswith(outer_real.rstrip(os.sep) + os.sep)


def check_not_inputs(
    output: str | os.PathLike,
    inputs: Iterable[str | os.PathLike],
    *,
    what: str = "output",
    holds: bool = False,
) -> None:
    """Refuse an output that is one of the inputs, however spelt (``dir/../dir``, symbolic
    links, hard links).

    Parameters
    ----------
    output : path-like
        The output file or folder.
    inputs : iterable of path-like
        Input files and folders.
    what : str
        How the message names the output (``"output"``, ``"--out"``, ...).
    holds : bool
        The output is a folder or store the tool may replace as a whole: also refuse it when an
        input lies inside it.

    Raises
    ------
    OutputIsInputError
        A ``ValueError`` whose one-line message names both paths.
    """
    out = Path(output)
    for source in inputs:
        source = Path(source)
        if _same(out, source) or (holds and _within(source, out)):
            relation = "is" if _same(out, source) else "holds"
            raise OutputIsInputError(
                f"{what} {str(out)!r} {relation} the input {str(source)!r}; inputs are never "
                "written: choose another output"
            )


def os_error_text(exc: OSError) -> str:
    """One line for an OS error: the path and the reason (``cannot write '/x': Permission
    denied``)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None:
        return reason
    target = f"{str(exc.filename)!r}" + (
        f" -> {str(exc.filename2)!r}" if getattr(exc, "filename2", None) else ""
    )
    return f"{target}: {reason}"


def check_writable_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and make sure a file can be created in it (a probe file,
    removed at once), so a command fails on an unwritable place before any work.

    Raises
    ------
    ValueError
        ``folder`` exists and is not a folder.
    OSError
        It cannot be created or written (read-only, ``/proc``, a file on the way, ...).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{str(folder)!r} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".resfuse-probe{PARTIAL_MARK}{uuid.uuid4().hex[:8]}"
    with open(probe, "x"):
        pass
    probe.unlink()
    return folder
