"""io.atomic_path with a folder (a zarr store): it replaces an older folder whole, and an
error leaves the older one as it was and no temporary folder."""

from __future__ import annotations

import pytest

from napari_resfuse.io import PARTIAL_MARK, atomic_path


def _tree(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()
    }


def test_a_new_folder_replaces_an_older_one_whole(tmp_path):
    store = tmp_path / "out.zarr"
    (store / "old").mkdir(parents=True)
    (store / "old" / "chunk").write_text("old")
    with atomic_path(store) as tmp:
        assert tmp.parent == tmp_path and PARTIAL_MARK in tmp.name and tmp.suffix == ".zarr"
        (tmp / "new").mkdir(parents=True)
        (tmp / "new" / "chunk").write_text("new")
    assert _tree(store) == {"new/chunk": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]  # nothing left aside


def test_an_error_keeps_the_older_folder_and_removes_the_new_one(tmp_path):
    store = tmp_path / "out.zarr"
    store.mkdir()
    (store / "chunk").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(store) as tmp:
        tmp.mkdir()
        (tmp / "chunk").write_text("half")
        raise RuntimeError("disk full")
    assert _tree(store) == {"chunk": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]


def test_a_folder_is_never_replaced_by_a_file(tmp_path):
    target = tmp_path / "out.tif"
    target.mkdir()
    (target / "keep").write_text("mine")
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.write_text("file")
    assert _tree(target) == {"keep": "mine"}
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]
