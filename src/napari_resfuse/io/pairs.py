"""Finding the infrared/visible pairs of a folder: the one rule every command uses.

The rule (``resfuse fuse``, ``batch``, ``compare`` and ``metrics`` alike):

- **Folders.** Two folders, infrared and visible; or one folder holding them as sub-folders
  named (any letter case) ``infrared``/``ir``/``lwir``/``thermal``/``tir`` and
  ``visible``/``vis``/``vi``/``rgb``/``optical`` (exactly one of each).
- **Images.** Files ending in ``.png``, ``.tif``, ``.tiff``, ``.jpg``, ``.jpeg``, ``.bmp``
  (any case); hidden files (``.name``) and sub-folders are ignored. Two images with the same
  name without extension in one folder (``a.png`` and ``a.tif``) are an error naming both.
- **Pairs.** An infrared and a visible image pair when their names without extension are the
  same (case-sensitive): ``ir/IR1.png`` with ``vis/IR1.tif``. Pairs come in natural order
  (``IR2`` before ``IR10``).
- **Unmatched images** (in one folder only) are never dropped silently: they are returned in
  :attr:`Pairs.unmatched`, and every command reports each one as a failed item
  (:meth:`Pairs.unmatched_items`, the same wording everywhere) and exits with code 1.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from .images import IMAGE_SUFFIXES

__all__ = [
    "INFRARED_FOLDER_NAMES",
    "VISIBLE_FOLDER_NAMES",
    "Pair",
    "Pairs",
    "find_pairs",
    "image_files",
    "natural_key",
    "sub_folders",
]

#: Sub-folder names (any letter case) of the infrared and visible images in one input folder.
INFRARED_FOLDER_NAMES = ("infrared", "ir", "lwir", "thermal", "tir")
VISIBLE_FOLDER_NAMES = ("visible", "vis", "vi", "rgb", "optical")


class Pair(NamedTuple):
    """One pair: its name (the shared file name without extension) and the two files."""

    name: str
    infrared: Path
    visible: Path


class Pairs(tuple):
    """The pairs of two folders (a tuple of :class:`Pair`, natural order), with what did not
    pair.

    Attributes
    ----------
    infrared_dir, visible_dir : pathlib.Path
        The two folders.
    unmatched : tuple of pathlib.Path
        Images with no partner of the same name in the other folder (natural order, infrared
        first).
    """

    infrared_dir: Path
    visible_dir: Path
    unmatched: tuple[Path, ...]

    def __new__(cls, pairs, infrared_dir: Path, visible_dir: Path, unmatched=()):
        self = super().__new__(cls, pairs)
        self.infrared_dir = Path(infrared_dir)
        self.visible_dir = Path(visible_dir)
        self.unmatched = tuple(unmatched)
        return self

    @property
    def names(self) -> list[str]:
        return [pair.name for pair in self]

    def unmatched_items(self) -> dict[str, str]:
        """Each unmatched image as a failed item: ``{"ir/c.png": "no visible image named
        'c' (pairs are matched by file name without extension)"}``."""
        items = {}
        for path in self.unmatched:
            role = "visible" if path.parent == self.infrared_dir else "infrared"
            items[f"{path.parent.name}/{path.name}"] = (
                f"no {role} image named {path.stem!r} (pairs are matched by file name "
                "without extension)"
            )
        return items


def natural_key(text: str) -> list:
    """Sort key that orders 'IR2' before 'IR10' (letter case ignored)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _listing(names, limit: int = 5) -> str:
    names = sorted(names, key=natural_key)
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def image_files(folder: str | os.PathLike) -> dict[str, Path]:
    """The images of one folder by name without extension (the rule of :func:`find_pairs`).

    Raises
    ------
    FileNotFoundError
        The folder does not exist.
    ValueError
        It is a file, or two of its images share a name without extension.
    """
    folder = Path(folder)
    if not folder.is_dir():
        if folder.exists():
            raise ValueError(f"{str(folder)!r} is a file, not a folder of images")
        raise FileNotFoundError(f"folder {str(folder)!r} does not exist")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if not path.is_file():
            continue
        if path.stem in found:
            raise ValueError(
                f"{found[path.stem].name} and {path.name} in {str(folder)!r} have the same name "
                "without extension, so either could pair; keep one"
            )
        found[path.stem] = path
    return found


def _sub_folder(root: Path, names: tuple[str, ...], role: str) -> Path:
    found = [p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in names]
    if not found:
        raise ValueError(
            f"{str(root)!r} has no {role} sub-folder (one of {', '.join(names)}, any letter "
            "case); or give the infrared and visible folders as two arguments"
        )
    if len(found) > 1:
        raise ValueError(
            f"{str(root)!r} has several {role} sub-folders ({', '.join(p.name for p in found)}); "
            "keep one"
        )
    return found[0]


def sub_folders(root: str | os.PathLike) -> tuple[Path, Path]:
    """The infrared and visible sub-folders of one input folder (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        if root.exists():
            raise ValueError(f"{str(root)!r} is a file, not a folder of pairs")
        raise FileNotFoundError(f"folder {str(root)!r} does not exist")
    return (
        _sub_folder(root, INFRARED_FOLDER_NAMES, "infrared"),
        _sub_folder(root, VISIBLE_FOLDER_NAMES, "visible"),
    )


def find_pairs(infrared: str | os.PathLike, visible: str | os.PathLike | None = None) -> Pairs:
    """The infrared/visible pairs of two folders, or of one folder holding both.

    Parameters
    ----------
    infrared : path-like
        The infrared folder; or, with ``visible`` omitted, a folder holding an infrared and a
        visible sub-folder (``ir``/``vis``, ``infrared``/``visible``, ``lwir``/``rgb``,
        ``thermal``/``optical``, ..., any letter case).
    visible : path-like, optional
        The visible folder.

    Returns
    -------
    Pairs
        A tuple of :class:`Pair` ``(name, infrared, visible)`` in natural order of the names;
        ``.unmatched`` lists the images without a partner (never dropped silently).

    Raises
    ------
    FileNotFoundError
        A folder does not exist.
    ValueError
        A path is a file, a sub-folder is missing or doubled, two images of a folder share a
        name, or no image pairs at all (the message lists what each folder holds).

    Examples
    --------
    >>> pairs = find_pairs("tno")  # tno/ir/*.png and tno/vis/*.png  # doctest: +SKIP
    >>> [p.name for p in pairs], pairs.unmatched  # doctest: +SKIP
    """
    if visible is None:
        ir_dir, vis_dir = sub_folders(infrared)
    else:
        ir_dir, vis_dir = Path(infrared), Path(visible)
    ir, vis = image_files(ir_dir), image_files(vis_dir)
    common = sorted(set(ir) & set(vis), key=natural_key)
    if not common:
        held = "; ".join(
            f"{str(folder)!r} holds {_listing(found) if found else 'no images'}"
            for folder, found in ((ir_dir, ir), (vis_dir, vis))
        )
        raise ValueError(
            f"no infrared and visible images pair ({held}); pairs are matched by file name "
            f"without extension ({', '.join(IMAGE_SUFFIXES)})"
        )
    unmatched = [ir[n] for n in sorted(set(ir) - set(vis), key=natural_key)]
    unmatched += [vis[n] for n in sorted(set(vis) - set(ir), key=natural_key)]
    pairs = [Pair(name, ir[name], vis[name]) for name in common]
    return Pairs(pairs, ir_dir, vis_dir, unmatched)
