"""The comparison harness (``napari_resfuse.compare`` and ``resfuse compare``) on folders of two
small generated pairs: report files and their rows, resuming, folder layouts, errors."""

from __future__ import annotations

import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest

from napari_resfuse import compare as cmp
from napari_resfuse.cli import main
from napari_resfuse.compare import (
    DEFAULT_METHODS,
    METHODS,
    compare,
    find_pairs,
    format_means_markdown,
    fuse_pair,
    iter_compare,
    iter_compare_arrays,
    resolve_methods,
)
from napari_resfuse.metrics import METRIC_NAMES, compute_metrics

from .conftest import textured_pair

FAST = ["average", "two_scale_max", "gff"]
SHAPE = (64, 96)
FEW_METRICS = ["entropy", "qabf", "nabf"]


def _write_pairs(root, names=("p1", "p2"), folders=("ir", "vis"), shape=SHAPE):
    for folder in folders:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names, start=1):
        ir, vis = textured_pair(shape, seed=k)
        iio.imwrite(root / folders[0] / f"{name}.png", ir)
        iio.imwrite(root / folders[1] / f"{name}.png", vis)
    return root


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """One full comparison (the fast baselines and the paper's method with random weights)."""
    root = tmp_path_factory.mktemp("compare")
    pairs = _write_pairs(root / "pairs")
    report = compare(pairs, root / "report", [*FAST, "resfuse"], weights="random")
    return pairs, root / "report", report


def test_report_files_hold_the_expected_rows(report_dir):
    _, out, report = report_dir
    methods = [*FAST, "resfuse"]
    assert report.pairs == ("p1", "p2") and report.methods == tuple(methods)
    assert (report.fused_count, report.reused_count) == (8, 0)

    with report.csv.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["pair", "method", *METRIC_NAMES]
    expected_keys = [(p, m) for p in ("p1", "p2") for m in methods] + [("mean", m) for m in methods]
    assert [tuple(r[:2]) for r in rows[1:]] == expected_keys
    values = np.array([[float(v) for v in r[2:]] for r in rows[1:]])
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values[8:], (values[:4] + values[4:8]) / 2)  # the means

    text = report.markdown.read_text(encoding="utf-8")
    means = text.split("## Mean over 2 pair(s)")[1].split("## Every pair")[0]
    lines = [line for line in means.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| method | entropy ↑") and "nabf ↓" in lines[0]
    assert [line.split("|")[1].strip() for line in lines[2:]] == methods
    assert text.count("**") >= 2 * len(METRIC_NAMES)  # a bold best value per metric
    assert "Seeded random weights" in text
    every = text.split("## Every pair")[1]
    assert sum(line.startswith(("| p1 |", "| p2 |")) for line in every.splitlines()) == 8

    # The fused images are what the metrics were computed from.
    fused = iio.imread(out / "fused" / "gff" / "p2.png")
    ir, vis = textured_pair(SHAPE, seed=2)
    assert fused.dtype == np.uint8 and fused.shape == SHAPE
    expected = compute_metrics(ir, vis, fused)
    row = next(r for r in report.rows if (r["pair"], r["method"]) == ("p2", "gff"))
    assert row == {"pair": "p2", "method": "gff", **expected}


def test_grid_has_a_row_per_pair_and_a_column_per_image(report_dir):
    pairs, _, report = report_dir
    grid = iio.imread(report.grid)
    columns = 2 + 4
    pad = 4
    assert grid.ndim == 2
    assert grid.shape[1] == columns * (SHAPE[1] + pad) + pad
    assert grid.shape[0] > 2 * SHAPE[0]
    # The second row's visible image sits unscaled in the second column (cells narrower than
    # cell_width are not resized): find it at its column offset.
    vis = iio.imread(pairs / "vis" / "p2.png")
    x = pad + (SHAPE[1] + pad)
    found = [
        y
        for y in range(grid.shape[0] - SHAPE[0] + 1)
        if np.array_equal(grid[y : y + SHAPE[0], x : x + SHAPE[1]], vis)
    ]
    assert len(found) == 1 and found[0] > grid.shape[0] / 2


def test_second_run_reuses_the_fused_images(report_dir):
    pairs, out, first = report_dir
    files = sorted((out / "fused").glob("*/*.png"))
    assert len(files) == 8
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    again = compare(pairs, out, [*FAST, "resfuse"], weights="random", metrics=FEW_METRICS)
    assert (again.fused_count, again.reused_count) == (0, 8)
    assert {f: f.stat().st_mtime_ns for f in files} == mtimes
    for row in again.rows:
        ref = next(
            r for r in first.rows if (r["pair"], r["method"]) == (row["pair"], row["method"])
        )
        assert all(row[n] == ref[n] for n in FEW_METRICS)


def test_changed_settings_fuse_that_method_again(tmp_path, monkeypatch):
    pairs = _write_pairs(tmp_path / "pairs")
    calls = []
    real = cmp._run

    def counting(method, *args):
        calls.append(method.name)
        return real(method, *args)

    monkeypatch.setattr(cmp, "_run", counting)
    out = tmp_path / "report"
    compare(pairs, out, ["average", "vgg19_li2018"], weights="random", metrics=FEW_METRICS)
    assert sorted(calls) == ["average", "average", "vgg19_li2018", "vgg19_li2018"]
    stamp = json.loads((out / "fused" / "vgg19_li2018" / "settings.json").read_text())
    assert stamp["weights"] == "random" and stamp["seed"] == 0
    calls.clear()
    report = compare(
        pairs, out, ["average", "vgg19_li2018"], weights="random", seed=1, metrics=FEW_METRICS
    )
    assert calls == ["vgg19_li2018", "vgg19_li2018"]  # the seed only matters to the network
    assert (report.fused_count, report.reused_count) == (2, 2)


def test_an_interrupted_run_resumes(tmp_path, monkeypatch):
    pairs = _write_pairs(tmp_path / "pairs")
    out = tmp_path / "report"
    runner = iter_compare(pairs, out, FAST, metrics=FEW_METRICS)
    events = [next(runner) for _ in range(4)]  # start, then three fusions
    runner.close()
    assert [e.action for e in events] == ["start", "fused", "fused", "fused"]
    assert events[0].total == 2 * 3 + 1
    assert not (out / "metrics.csv").exists()
    assert not list(out.glob("fused/*/.*partial-*"))
    report = compare(pairs, out, FAST, metrics=FEW_METRICS)
    assert (report.fused_count, report.reused_count) == (3, 3)
    assert report.csv.is_file() and report.markdown.is_file() and report.grid.is_file()


def test_progress_callback_sees_every_step(tmp_path):
    pairs = _write_pairs(tmp_path / "pairs")
    seen = []
    compare(pairs, tmp_path / "out", ["average"], metrics=FEW_METRICS, progress=seen.append)
    assert [(e.step, e.pair, e.method, e.action) for e in seen] == [
        (0, None, None, "start"),
        (1, "p1", "average", "fused"),
        (2, "p2", "average", "fused"),
        (3, None, None, "report"),
    ]


# --------------------------------------------------------------------------------------------
# Pairs folders
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("folders", [("ir", "vis"), ("infrared", "visible"), ("IR", "VIS")])
def test_pairs_folder_layouts(tmp_path, folders):
    root = _write_pairs(tmp_path, names=("IR10", "IR2", "IR1"), folders=folders)
    found = find_pairs(root)
    assert [name for name, _, _ in found] == ["IR1", "IR2", "IR10"]  # natural order
    _, ir_path, vis_path = found[0]
    assert ir_path.parent.name == folders[0] and vis_path.parent.name == folders[1]
    assert ir_path.name == vis_path.name == "IR1.png"


def test_pairs_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_pairs(tmp_path / "nope")
    (tmp_path / "ir").mkdir()
    with pytest.raises(ValueError, match=r"no visible sub-folder \(one of visible, vis, "):
        find_pairs(tmp_path)
    (tmp_path / "vis").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        find_pairs(tmp_path)
    _write_pairs(tmp_path, names=("a", "b"))
    iio.imwrite(tmp_path / "ir" / "c.png", np.zeros((8, 8), np.uint8))
    assert list(find_pairs(tmp_path).unmatched_items()) == ["ir/c.png"]
    (tmp_path / "visible").mkdir()
    with pytest.raises(ValueError, match="several visible sub-folders"):
        find_pairs(tmp_path)


def test_a_method_that_rejects_a_pair_is_listed_and_the_rest_compared(tmp_path, capsys):
    pairs = _write_pairs(tmp_path / "pairs", shape=(24, 40))  # below the engine's 32 px
    report = compare(pairs, tmp_path / "out", ["average", "resfuse"], weights="random",
                     metrics=FEW_METRICS)  # fmt: skip
    assert sorted(report.failed) == ["p1 / resfuse", "p2 / resfuse"]
    assert "at least 32 px" in report.failed["p1 / resfuse"]
    assert [r["method"] for r in report.rows] == ["average", "average", "average"]
    with report.csv.open(newline="") as handle:
        failed_rows = [r for r in csv.DictReader(handle) if r["method"] == "resfuse"]
    assert [r["pair"] for r in failed_rows] == ["p1", "p2"]
    assert all(r["entropy"] == "nan" for r in failed_rows)
    assert "## Failed (2)" in report.markdown.read_text()
    argv = ["compare", str(pairs), "--out", str(tmp_path / "o"), "--methods", "average,resfuse"]
    assert main([*argv, "--weights", "random", "--quiet", "--metrics", "entropy"]) == 1
    err = capsys.readouterr().err
    assert "resfuse compare: failed p1 / resfuse: images of 24 x 40 px are too small" in err


# --------------------------------------------------------------------------------------------
# Methods, one pair in memory, RGB input
# --------------------------------------------------------------------------------------------


def test_resolve_methods():
    assert resolve_methods(None) == DEFAULT_METHODS
    assert resolve_methods("gff, cbf,gff") == ("gff", "cbf")
    assert resolve_methods(["all"]) == tuple(METHODS)
    expected = {
        "resfuse",
        "resfuse-l2",
        "resfuse-resnet50",
        "resfuse-resnet101",
        "resfuse-vgg19",
        "resfuse-published-code",
        "average",
        "two_scale_max",
        "gff",
        "cbf",
        "wls",
        "vgg19_li2018",
        "resnet50_zca",
    }
    assert set(METHODS) == expected
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        resolve_methods("gff,nope")
    with pytest.raises(ValueError, match="at least one"):
        resolve_methods([])


def test_methods_match_the_functions_they_name():
    ir, vis = textured_pair((40, 48), seed=3)
    from napari_resfuse import fuse
    from napari_resfuse.baselines import gff

    np.testing.assert_allclose(fuse_pair(ir, vis, "gff"), np.clip(gff(ir, vis), 0, 1), atol=1e-6)
    expected = fuse(ir, vis, weights="random", norm="l2").fused
    np.testing.assert_allclose(
        fuse_pair(ir, vis, "resfuse-l2", weights={"resnet152": "random"}), expected, atol=1e-6
    )


def test_iter_compare_arrays_yields_each_method_then_the_rows():
    ir, vis = textured_pair(SHAPE, seed=1)
    runner = iter_compare_arrays(ir, vis, ["average", "gff"], metrics=FEW_METRICS)
    results = []
    while True:
        try:
            results.append(next(runner))
        except StopIteration as stop:
            rows = stop.value
            break
    assert [r.method for r in results] == ["average", "gff"]
    assert all(r.fused.dtype == np.uint8 and r.fused.shape == SHAPE for r in results)
    assert results[0].metrics == compute_metrics(ir, vis, results[0].fused, FEW_METRICS)
    assert [(r["pair"], r["method"]) for r in rows] == [
        ("pair", "average"),
        ("pair", "gff"),
        ("mean", "average"),
        ("mean", "gff"),
    ]


def test_rgb_visible_is_compared_on_its_luminance(tmp_path):
    root = _write_pairs(tmp_path / "pairs", names=("p1",))
    vis = iio.imread(root / "vis" / "p1.png")
    rgb = np.stack([vis, np.roll(vis, 3, axis=1), vis // 2], axis=-1)
    iio.imwrite(root / "vis" / "p1.png", rgb)
    report = compare(root, tmp_path / "out", ["average"], metrics=FEW_METRICS)
    fused = iio.imread(report.fused[("p1", "average")])
    ir = iio.imread(root / "ir" / "p1.png").astype(np.float64)
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    assert fused.shape == SHAPE and fused.dtype == np.uint8
    assert np.abs(fused - (ir + luma) / 2).max() <= 0.51


def test_means_table_marks_the_best_value_in_each_direction():
    rows = [
        {"pair": "mean", "method": "a", "qabf": 0.5, "nabf": 0.2},
        {"pair": "mean", "method": "b", "qabf": 0.7, "nabf": 0.1},
        {"pair": "x", "method": "a", "qabf": 9.0, "nabf": 0.0},
    ]
    text = format_means_markdown(rows, names=["qabf", "nabf"], digits=2)
    assert text.splitlines() == [
        "| method | qabf ↑ | nabf ↓ |",
        "|---|---:|---:|",
        "| a | 0.50 | 0.20 |",
        "| b | **0.70** | **0.10** |",
    ]


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def test_cli_writes_the_report(tmp_path, capsys):
    pairs = _write_pairs(tmp_path / "pairs")
    out = tmp_path / "report"
    argv = ["compare", str(pairs), "--out", str(out), "--methods", "average,gff"]
    assert main([*argv, "--metrics", *FEW_METRICS]) == 0
    captured = capsys.readouterr()
    assert "Mean over 2 pair(s)" in captured.out and "qabf" in captured.out
    assert "compare" in captured.err and "fused 4 image(s), reused 0" in captured.err
    assert {p.name for p in out.iterdir()} == {"fused", "metrics.csv", "metrics.md", "grid.png"}
    assert iio.imread(out / "grid.png").shape[1] == 4 * (SHAPE[1] + 4) + 4
    assert main([*argv, "--metrics", "entropy", "--quiet", "--grid-columns", "2"]) == 0
    captured = capsys.readouterr()
    assert "fused 0 image(s), reused 4" in captured.err and "compare:" not in captured.err
    assert iio.imread(out / "grid.png").shape[1] == 2 * (SHAPE[1] + 4) + 4


def test_cli_errors_are_one_line(tmp_path, capsys):
    pairs = _write_pairs(tmp_path / "pairs")
    assert main(["compare", str(pairs), "--out", str(tmp_path / "o"), "--methods", "nope"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    argv = ["compare", str(pairs), "--out", str(tmp_path / "o"), "--weights", "resnet9=x.pth"]
    assert main(argv) == 2
    assert "BACKBONE=VALUE" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_parses_per_backbone_weights():
    from napari_resfuse.cli.compare import parse_weights

    assert parse_weights("random") == "random"
    assert parse_weights("resnet152=a.pth, vgg19=random") == {
        "resnet152": "a.pth",
        "vgg19": "random",
    }


def test_grid_wraps_long_rows():
    values = [51, 102, 153, 204, 128]
    images = [np.full((10, 20), v / 255.0) for v in values]
    columns = ["a", "b", "c", "d", "e"]
    pad = 4
    flat = np.asarray(cmp.grid_image([("p", images)], columns))
    assert flat.shape[1] == 5 * (20 + pad) + pad
    wrapped = np.asarray(cmp.grid_image([("p", images)], columns, wrap=2))
    assert wrapped.shape[1] == 2 * (20 + pad) + pad

    def top_of_block(value, x):
        rows = [
            y
            for y in range(wrapped.shape[0] - 9)
            if np.all(wrapped[y : y + 10, x : x + 20] == value)
        ]
        assert len(rows) == 1, (value, x, rows)
        return rows[0]

    tops = [top_of_block(v, pad + (k % 2) * (20 + pad)) for k, v in enumerate(values)]
    assert tops[0] == tops[1] < tops[2] == tops[3] < tops[4]  # lines of 2, 2 and 1 images
    with pytest.raises(ValueError, match="wrap must be a positive integer"):
        cmp.grid_image([("p", images)], columns, wrap=0)


def test_iter_compare_arrays_with_a_registration_fuses_the_warped_infrared():
    # An infrared at half the resolution: the registration doubles coordinates. The average
    # of the comparison must be the average of the warped infrared and the visible image.
    from napari_resfuse.register import Registration

    ir, vis = textured_pair()
    ir_small = ir[::2, ::2].copy()
    reg = Registration(
        np.diag([0.5, 0.5, 1.0]),
        model="similarity",
        infrared_shape=ir_small.shape,
        visible_shape=vis.shape,
    )
    before = ir_small.copy()
    result = next(cmp.iter_compare_arrays(ir_small, vis, ["average"], registration=reg))
    assert result.fused.shape == vis.shape
    warped = reg.warp(ir_small.astype(np.float64) / 255.0)
    expected = (warped + vis / 255.0) / 2.0
    inside = reg.valid
    np.testing.assert_allclose(result.fused[inside] / 255.0, expected[inside], atol=1 / 255)
    np.testing.assert_array_equal(ir_small, before)
