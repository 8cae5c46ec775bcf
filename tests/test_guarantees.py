"""The README's "Guarantees", command by command, on real files: one pairing rule, inputs never
written, atomic outputs, what --overwrite may delete, one-line errors and the exit codes."""

from __future__ import annotations

import csv
import os
import resource

import numpy as np
import pytest

from napari_resfuse.cli import main
from napari_resfuse.io import find_pairs, read_image, write_image

from .conftest import textured_pair

FAST = ["--weights", "random", "--device", "cpu", "--layers", "conv1,conv2_1", "-q"]
BATCH = ["--scheduler", "threads", "--workers", "1"]


def _pairs(root, names, ir="ir", vis="vis", vis_suffix=".png"):
    for k, name in enumerate(names):
        a, b = textured_pair(seed=k)
        write_image(root / ir / f"{name}.png", a)
        write_image(root / vis / f"{name}{vis_suffix}", b)
    return root


def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(capsys, *needles):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------------------------
# One pairing rule


def test_fuse_metrics_compare_and_batch_pair_one_folder_identically(tmp_path, capsys):
    """Natural order (IR2 before IR10), sub-folder names (lwir/rgb), extensions that differ
    between the two sides: every command finds the same pairs in the same order."""
    pytest.importorskip("distributed")
    root = _pairs(tmp_path / "pairs", ["IR10", "IR2", "scene"], "LWIR", "rgb", ".tif")
    expected = ["IR2", "IR10", "scene"]
    assert find_pairs(root).names == expected
    ir_dir, vis_dir = root / "LWIR", root / "rgb"

    assert main(["fuse", str(ir_dir), str(vis_dir), "-o", str(tmp_path / "fused"), *FAST]) == 0
    assert sorted(p.stem for p in (tmp_path / "fused").iterdir()) == sorted(expected)

    assert main(["batch", str(root), "--out", str(tmp_path / "batch"), *BATCH, *FAST]) == 0
    batch = [p.stem for p in (tmp_path / "batch").iterdir() if p.is_file()]
    assert sorted(batch) == sorted(expected)

    argv = ["compare", str(root), "--out", str(tmp_path / "report"), "--methods", "average"]
    assert main([*argv, "--metrics", "entropy", "--quiet"]) == 0
    with (tmp_path / "report" / "metrics.csv").open(newline="") as handle:
        compared = [r["pair"] for r in csv.DictReader(handle) if r["pair"] != "mean"]
    assert compared == expected

    # resfuse metrics pairs --ir/--vis with io.find_pairs too.
    table = tmp_path / "metrics.csv"
    argv = [
        "metrics",
        "--ir",
        str(ir_dir),
        "--vis",
        str(vis_dir),
        "--fused",
        str(tmp_path / "fused"),
    ]
    assert main([*argv, "--names", "entropy", "--csv", str(table), "--quiet"]) == 0
    with table.open(newline="") as handle:
        measured = [r["pair"] for r in csv.DictReader(handle) if r["pair"] != "mean"]
    assert measured == expected
    capsys.readouterr()


def test_unmatched_images_are_reported_the_same_way_and_exit_1(tmp_path, capsys):
    pytest.importorskip("distributed")
    root = _pairs(tmp_path / "pairs", ["a", "b"])
    write_image(root / "ir" / "lonely.png", textured_pair(seed=5)[0])
    line = "failed ir/lonely.png: no visible image named 'lonely'"
    runs = {
        "fuse": ["fuse", str(root / "ir"), str(root / "vis"), "-o", str(tmp_path / "f"), *FAST],
        "batch": ["batch", str(root), "--out", str(tmp_path / "b"), *BATCH, *FAST],
        "compare": [
            "compare",
            str(root),
            "--out",
            str(tmp_path / "c"),
            "--methods",
            "average",
            "--metrics",
            "entropy",
            "--quiet",
        ],
    }
    for command, argv in runs.items():
        assert main(argv) == 1, command
        captured = capsys.readouterr()
        assert line in captured.out + captured.err, command
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["a.png", "b.png"]


def test_same_name_twice_in_a_folder_is_an_error_naming_both(tmp_path, capsys):
    root = _pairs(tmp_path, ["a"])
    write_image(root / "ir" / "a.jpg", textured_pair()[0])
    argv = ["fuse", str(root / "ir"), str(root / "vis"), "-o", str(tmp_path / "out"), *FAST]
    assert main(argv) == 2
    _one_error_line(capsys, "a.jpg and a.png", "same name without extension")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# Inputs are never written


def test_fuse_refuses_an_output_that_is_an_input(tmp_path, capsys):
    root = _pairs(tmp_path / "a", ["x"])
    ir, vis = root / "ir" / "x.png", root / "vis" / "x.png"
    (tmp_path / "link.png").symlink_to(ir)
    before = _snapshot(tmp_path)
    spellings = [str(ir), str(root / "ir" / ".." / "ir" / "x.png"), str(tmp_path / "link.png")]
    for out in spellings:
        assert main(["fuse", str(ir), str(vis), "-o", out, *FAST]) == 2
        _one_error_line(capsys, "is the input", "inputs are never written")
    for out in (root / "ir", root / "vis" / ".." / "vis"):  # folder mode
        assert main(["fuse", str(root / "ir"), str(root / "vis"), "-o", str(out), *FAST]) == 2
        _one_error_line(capsys, "is the input")
    assert _snapshot(tmp_path) == before


def test_batch_and_compare_refuse_an_output_that_is_an_input(tmp_path, capsys):
    pytest.importorskip("distributed")
    import tifffile

    root = _pairs(tmp_path / "pairs", ["x"])
    stack = np.stack([textured_pair(seed=s)[0] for s in range(2)])
    tifffile.imwrite(tmp_path / "ir.tif", stack)
    tifffile.imwrite(tmp_path / "vis.tif", stack)
    before = _snapshot(tmp_path)
    for argv in (
        ["batch", str(root / "ir"), str(root / "vis"), "--out", str(root / "ir")],
        ["batch", str(root), "--out", str(root / "vis" / ".." / "ir")],
        [
            "batch",
            str(tmp_path / "ir.tif"),
            str(tmp_path / "vis.tif"),
            "--out",
            str(tmp_path / "ir.tif"),
            "--overwrite",
        ],
    ):
        assert main([*argv, *BATCH, *FAST]) == 2
        _one_error_line(capsys, "the input")
    assert main(["compare", str(root), "--out", str(root), "--methods", "average"]) == 2
    _one_error_line(capsys, "is the input")
    assert _snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------
# --overwrite deletes only what the tool wrote


def test_batch_overwrite_never_deletes_a_foreign_file(tmp_path, capsys):
    pytest.importorskip("distributed")
    import tifffile
    import zarr

    root = _pairs(tmp_path / "pairs", ["x"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["batch", str(root), "--out", str(out), *BATCH, *FAST]
    assert main([*argv, "--overwrite"]) == 0
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["notes.txt", "x.png"]

    stack = np.stack([textured_pair(seed=s)[0] for s in range(2)])
    tifffile.imwrite(tmp_path / "ir.tif", stack)
    tifffile.imwrite(tmp_path / "vis.tif", stack)
    stacks = ["batch", str(tmp_path / "ir.tif"), str(tmp_path / "vis.tif"), *BATCH, *FAST]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.bin").write_bytes(b"precious")
    assert main([*stacks, "--out", str(foreign), "--overwrite"]) == 2
    _one_error_line(capsys, "not a store written by resfuse batch")
    assert (foreign / "data.bin").read_bytes() == b"precious"

    store = tmp_path / "fused.zarr"
    assert main([*stacks, "--out", str(store)]) == 0
    (store / "README").write_text("my note in the store")
    assert main([*stacks, "--out", str(store), "--overwrite"]) == 0
    assert "frame blocks: 1 fused" in capsys.readouterr().out
    assert (store / "README").read_text() == "my note in the store"
    assert zarr.open_group(str(store), mode="r")["fused"].shape == (2, 64, 96)


def test_compare_removes_old_images_only_from_its_own_method_folders(tmp_path):
    from napari_resfuse.compare import compare

    root = _pairs(tmp_path / "pairs", ["p"])
    out = tmp_path / "report"
    foreign = write_image(out / "fused" / "resfuse" / "photo.png", np.zeros((8, 8), np.uint8))
    compare(root, out, ["resfuse"], weights="random", metrics=["entropy"])
    assert foreign.is_file()  # no settings.json of ours was there: nothing deleted
    ours = out / "fused" / "resfuse" / "p.png"
    assert ours.is_file()
    stale = []

    def at_start(event):
        if event.action == "start":
            stale.append(ours.exists())

    report = compare(
        root, out, ["resfuse"], weights="random", seed=3, metrics=["entropy"], progress=at_start
    )
    assert stale == [False]  # other settings: the image it wrote before was removed first
    assert report.fused_count == 1 and ours.is_file() and foreign.is_file()


# --------------------------------------------------------------------------------------------
# Atomic outputs, OS errors


@pytest.fixture
def pair_files(tmp_path):
    ir, vis = textured_pair()
    return write_image(tmp_path / "ir.png", ir), write_image(tmp_path / "vis.png", vis)


def test_a_failed_write_keeps_the_older_file(tmp_path, pair_files, capsys):
    """A real write failure (the file-size limit, as a full disk would): exit 2, one line, the
    older output intact, no partial file left."""
    out = write_image(tmp_path / "out" / "fused.png", np.zeros((64, 96), np.uint8))
    old = out.read_bytes()
    assert len(old) < 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))  # Python ignores SIGXFSZ
    try:
        code = main(["fuse", str(pair_files[0]), str(pair_files[1]), "-o", str(out), *FAST])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert code == 2
    _one_error_line(capsys, "File too large", "fused.png")
    assert out.read_bytes() == old
    assert os.listdir(out.parent) == ["fused.png"]


def test_os_errors_are_one_line_with_exit_2(tmp_path, pair_files, capsys):
    ir, vis = (str(p) for p in pair_files)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    cases = [
        (["fuse", ir, vis, "-o", "/proc/resfuse.png"], "/proc"),
        (["fuse", ir, vis, "-o", "/proc/resfuse/out.png"], "/proc/resfuse"),
        (["fuse", ir, vis, "-o", str(a_file / "out.png")], "plain.txt"),
        (["fuse", ir, vis, "-o", "f.png", "--save-intermediates", str(a_file)], "plain.txt"),
        (["compare", str(tmp_path), "--out", str(a_file / "r"), "--methods", "average"], ""),
        (["batch", str(tmp_path), str(tmp_path), "--out", "/proc/resfuse-out"], "/proc"),
    ]
    folder = _pairs(tmp_path / "pairs", ["p"])
    cases.append(
        (["fuse", str(folder / "ir"), str(folder / "vis"), "-o", str(a_file)], "not a folder")
    )
    for argv, needle in cases:
        argv = [*argv, *FAST] if argv[0] in ("fuse", "batch") else argv
        assert main(argv) == 2, argv
        _one_error_line(capsys, needle)
    assert a_file.read_text() == "x"


# --------------------------------------------------------------------------------------------
# One bad item does not stop the others


def test_fuse_folders_go_on_past_a_corrupt_pair(tmp_path, capsys):
    root = _pairs(tmp_path, ["a", "b", "c"])
    (root / "ir" / "b.png").write_bytes(b"\x89PNG truncated")
    argv = ["fuse", str(root / "ir"), str(root / "vis"), "-o", str(tmp_path / "out"), *FAST]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "fused 2 of 3 pairs" in captured.out
    assert "resfuse fuse: failed b: " in captured.err and "is not a readable image" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


# --------------------------------------------------------------------------------------------
# Clear errors, checked before any work


def test_output_format_is_checked_before_the_fusion(tmp_path, pair_files, capsys):
    """The weights file does not exist: an output error reported first proves the output was
    checked before the network was even built."""
    ir, vis = (str(p) for p in pair_files)
    missing = ["--weights", str(tmp_path / "missing.pth"), "--device", "cpu", "-q"]
    assert main(["fuse", ir, vis, "-o", str(tmp_path / "f.xyz"), *missing]) == 2
    _one_error_line(capsys, "unknown image format '.xyz'")
    stack = np.stack([textured_pair(seed=s)[0] for s in range(2)]).astype(np.float32)
    write_image(tmp_path / "s.tif", stack)
    argv = ["fuse", str(tmp_path / "s.tif"), str(tmp_path / "s.tif"), "-o", str(tmp_path / "f.png")]
    assert main([*argv, *missing]) == 2
    _one_error_line(capsys, "cannot write float32 data", "write a .tif")
    assert not (tmp_path / "f.png").exists()


def test_a_folder_as_the_infrared_file_and_grey_alpha_input(tmp_path, pair_files, capsys):
    ir, vis = pair_files
    assert main(["fuse", str(tmp_path), str(vis), "-o", str(tmp_path / "o.png"), *FAST]) == 2
    _one_error_line(capsys, "infrared input", "is a folder but the other is not")
    grey = read_image(ir)
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "la.png", np.stack([grey, np.full_like(grey, 255)], axis=-1))
    out = tmp_path / "o.png"
    assert main(["fuse", str(tmp_path / "la.png"), str(vis), "-o", str(out), *FAST]) == 0
    assert "warning: " in capsys.readouterr().err and read_image(out).shape == grey.shape


def test_batch_checks_the_weights_before_starting_a_cluster(tmp_path, capsys):
    """An unreachable scheduler address: the weights error comes first, so no cluster was
    contacted."""
    pytest.importorskip("distributed")
    root = _pairs(tmp_path / "pairs", ["x"])
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"")
    argv = ["batch", str(root), "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9"]
    assert main([*argv, "--weights", str(tmp_path / "missing.pth"), "-q"]) == 2
    _one_error_line(capsys, "missing.pth")
    assert not (tmp_path / "o").exists()
