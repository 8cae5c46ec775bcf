"""End-to-end tests of ``resfuse metrics`` on real PNG files written to a temporary folder."""

from __future__ import annotations

import csv
import json
import math

import imageio.v3 as iio
import numpy as np
import pytest

from napari_resfuse.cli import main
from napari_resfuse.metrics import METRIC_NAMES, compute_metrics

FAST = ["std", "spatial_frequency", "psnr", "cc"]


def _images(seed: int, shape=(40, 48)):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    ir = np.clip(90 + 120 * np.exp(-((yy - 20) ** 2 + (xx - 15) ** 2) / 80.0), 0, 255)
    ir = np.clip(ir + rng.normal(0, 4, shape), 0, 255).astype(np.uint8)
    vis = np.clip(120 + 70 * np.sin(xx / 2.5 + seed) + rng.normal(0, 8, shape), 0, 255)
    vis = vis.astype(np.uint8)
    average = ((ir.astype(np.int32) + vis) // 2).astype(np.uint8)
    maximum = np.maximum(ir, vis)
    return ir, vis, average, maximum


def _read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_single_triple_prints_table_and_writes_csv_json(tmp_path, capsys):
    ir, vis, average, maximum = _images(0)
    for name, image in (("ir", ir), ("vis", vis), ("avg", average), ("max", maximum)):
        iio.imwrite(tmp_path / f"{name}.png", image)
    code = main(
        [
            "metrics",
            "--ir", str(tmp_path / "ir.png"),
            "--vis", str(tmp_path / "vis.png"),
            "--fused", str(tmp_path / "avg.png"), str(tmp_path / "max.png"),
            "--csv", str(tmp_path / "out.csv"),
            "--json", str(tmp_path / "out.json"),
            "--markdown", str(tmp_path / "out.md"),
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("Pair ir")
    header = out.splitlines()[1].split()
    assert header == ["metric", "better", "avg", "max"]
    for name in METRIC_NAMES:
        assert any(line.split()[:1] == [name] for line in out.splitlines()), name

    rows = _read_csv(tmp_path / "out.csv")
    assert [(r["pair"], r["method"]) for r in rows] == [
        ("ir", "avg"),
        ("ir", "max"),
        ("mean", "avg"),
        ("mean", "max"),
    ]
    expected = compute_metrics(ir, vis, average)
    for name in METRIC_NAMES:
        assert float(rows[0][name]) == expected[name]  # full precision, same images
        assert rows[2][name] == rows[0][name]

    document = json.loads((tmp_path / "out.json").read_text())
    assert document["metrics"] == list(METRIC_NAMES)
    assert document["directions"]["nabf"] == "lower"
    assert document["rows"][1]["method"] == "max"
    assert document["rows"][1]["cc"] == compute_metrics(ir, vis, maximum, names="cc")["cc"]
    assert "| pair | method | entropy ↑ |" in (tmp_path / "out.md").read_text(encoding="utf-8")


def test_folder_mode_matches_pairs_by_name_and_writes_means(tmp_path, capsys):
    folders = {name: tmp_path / name for name in ("ir", "vis", "avg", "max")}
    for folder in folders.values():
        folder.mkdir()
    stems = ["2", "10", "1"]
    triples = {}
    for k, stem in enumerate(stems):
        ir, vis, average, maximum = _images(k)
        triples[stem] = (ir, vis, average, maximum)
        iio.imwrite(folders["ir"] / f"{stem}.png", ir)
        iio.imwrite(folders["vis"] / f"{stem}.png", vis)
        iio.imwrite(folders["avg"] / f"{stem}.png", average)
        iio.imwrite(folders["max"] / f"{stem}.bmp", maximum)
    (folders["ir"] / "notes.txt").write_text("not an image")

    code = main(
        [
            "metrics",
            "--ir", str(folders["ir"]),
            "--vis", str(folders["vis"]),
            "--fused", str(folders["avg"]), str(folders["max"]),
            "--names", *FAST,
            "--csv", str(tmp_path / "t.csv"),
            "--json", str(tmp_path / "t.json"),
            "--per-pair",
        ]
    )  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "Mean over 3 pairs" in out
    assert "6/6" in captured.err  # the progress bar's last state: 3 pairs x 2 methods
    assert out.count("Pair ") == 3

    rows = _read_csv(tmp_path / "t.csv")
    assert list(rows[0]) == ["pair", "method", *FAST]
    # Natural order of the pair names, methods in the order given, then the means.
    assert [(r["pair"], r["method"]) for r in rows] == [
        ("1", "avg"), ("1", "max"), ("2", "avg"), ("2", "max"), ("10", "avg"), ("10", "max"),
        ("mean", "avg"), ("mean", "max"),
    ]  # fmt: skip
    for row in rows[:6]:
        ir, vis, average, maximum = triples[row["pair"]]
        fused = average if row["method"] == "avg" else maximum
        expected = compute_metrics(ir, vis, fused, names=FAST)
        for name in FAST:
            assert float(row[name]) == expected[name]
    for name in FAST:
        mean_avg = np.mean([float(r[name]) for r in rows[:6] if r["method"] == "avg"])
        assert float(rows[6][name]) == pytest.approx(mean_avg, rel=1e-14)

    document = json.loads((tmp_path / "t.json").read_text())
    assert len(document["rows"]) == 8
    assert document["rows"][7]["pair"] == "mean"
    assert math.isclose(document["rows"][7]["cc"], float(rows[7]["cc"]))


def _error(capsys, argv) -> str:
    assert main(["metrics", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_inputs_give_one_line_errors_naming_the_argument(tmp_path, capsys):
    ir, vis, average, _ = _images(1)
    iio.imwrite(tmp_path / "ir.png", ir)
    iio.imwrite(tmp_path / "vis.png", vis)
    iio.imwrite(tmp_path / "small.png", average[:30])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    ir_path, vis_path = str(tmp_path / "ir.png"), str(tmp_path / "vis.png")

    err = _error(capsys, ["--ir", ir_path, "--vis", vis_path, "--fused", str(tmp_path / "no.png")])
    assert "--fused: no such file" in err and "no.png" in err
    err = _error(
        capsys, ["--ir", ir_path, "--vis", vis_path, "--fused", str(tmp_path / "broken.png")]
    )
    assert "--fused: cannot read" in err and "broken.png" in err
    err = _error(
        capsys, ["--ir", ir_path, "--vis", vis_path, "--fused", str(tmp_path / "small.png")]
    )
    assert "must have the same shape" in err
    err = _error(capsys, ["--ir", ir_path, "--vis", str(tmp_path), "--fused", ir_path])
    assert "--ir" in err and "all as files or all as folders" in err
    err = _error(
        capsys,
        [
            "--ir",
            ir_path,
            "--vis",
            vis_path,
            "--fused",
            ir_path,
            "--csv",
            str(tmp_path / "x" / "t.csv"),
        ],
    )
    assert "--csv: folder" in err


def test_folder_mode_reports_unmatched_pairs_as_failed_items(tmp_path, capsys):
    ir, vis, average, _ = _images(2)
    for name in ("ir", "vis", "fused"):
        (tmp_path / name).mkdir()
    for stem in ("a", "b"):
        iio.imwrite(tmp_path / "ir" / f"{stem}.png", ir)
        iio.imwrite(tmp_path / "vis" / f"{stem}.png", vis)
    iio.imwrite(tmp_path / "fused" / "a.png", average)
    iio.imwrite(tmp_path / "vis" / "c.png", vis)
    argv = ["--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis"), "--names", "std"]
    table = [
        "--csv", str(tmp_path / "t.csv"), "--json", str(tmp_path / "t.json"), "--quiet"
    ]  # fmt: skip

    code = main(["metrics", *argv, "--fused", str(tmp_path / "fused"), *table])
    assert code == 1  # measured what pairs, reported the rest: never dropped silently
    captured = capsys.readouterr()
    assert "Mean over 2 pairs" in captured.out  # a, b: c has no infrared image
    assert "1 of 2 items failed" in captured.out and "1 image without a partner" in captured.out
    err = [line for line in captured.err.splitlines() if line.startswith("resfuse metrics:")]
    assert err == [
        f"resfuse metrics: failed b / fused: --fused {tmp_path / 'fused'}: no fused image named "
        "'b' (pairs are matched by file name without extension)",
        # The same wording as resfuse fuse, compare and batch (io.Pairs.unmatched_items).
        "resfuse metrics: failed vis/c.png: no infrared image named 'c' (pairs are matched by "
        "file name without extension)",
    ]
    # The CSV and JSON list the unmatched image too (NaN, its error), in natural order.
    rows = _read_csv(tmp_path / "t.csv")
    assert [(r["pair"], r["method"]) for r in rows] == [
        ("a", "fused"), ("b", "fused"), ("c", "fused"), ("mean", "fused")
    ]  # fmt: skip
    assert rows[2]["error"].startswith("no infrared image named 'c'")
    assert math.isnan(float(rows[2]["std"]))
    assert float(rows[3]["std"]) == float(rows[0]["std"])  # the mean uses the measured pair
    document = json.loads((tmp_path / "t.json").read_text())
    assert [(f["pair"], f["method"]) for f in document["failed"]] == [
        ("b", "fused"), ("c", "fused")
    ]  # fmt: skip
    assert document["failed"][1]["error"].startswith("no infrared image named 'c'")

    err = _error(capsys, [*argv, "--fused", str(tmp_path / "missing")])
    assert "--fused: no such folder" in err
    (tmp_path / "other").mkdir()
    iio.imwrite(tmp_path / "other" / "z.png", vis)
    err = _error(capsys, ["--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "other"),
                          "--fused", str(tmp_path / "fused")])  # fmt: skip
    assert "no infrared and visible images pair" in err and "matched by file name" in err


def test_quiet_folder_mode_has_no_progress_bar(tmp_path, capsys):
    ir, vis, average, _ = _images(3)
    for name in ("ir", "vis", "fused"):
        (tmp_path / name).mkdir()
    for stem in ("a", "b"):
        iio.imwrite(tmp_path / "ir" / f"{stem}.png", ir)
        iio.imwrite(tmp_path / "vis" / f"{stem}.png", vis)
        iio.imwrite(tmp_path / "fused" / f"{stem}.png", average)
    argv = ["--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vis")]
    code = main(["metrics", *argv, "--fused", str(tmp_path / "fused"), "--names", "std", "--quiet"])
    assert code == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "Mean over 2 pairs" in captured.out


def test_folder_mode_goes_on_past_failed_items_and_reports_them(tmp_path, capsys):
    for name in ("ir", "vis", "avg", "copy"):
        (tmp_path / name).mkdir()
    triples = {}
    for k, stem in enumerate(("a", "b", "c")):
        ir, vis, average, _ = _images(10 + k)
        triples[stem] = (ir, vis, average)
        iio.imwrite(tmp_path / "ir" / f"{stem}.png", ir)
        iio.imwrite(tmp_path / "vis" / f"{stem}.png", vis)
        iio.imwrite(tmp_path / "avg" / f"{stem}.png", average)
        iio.imwrite(tmp_path / "copy" / f"{stem}.png", ir)  # scd is undefined: F equals IR
    (tmp_path / "avg" / "b.png").write_bytes(b"not a png")  # unreadable
    iio.imwrite(tmp_path / "avg" / "c.png", triples["c"][2][:30])  # wrong size
    names = ["std", "scd"]
    code = main(
        [
            "metrics",
            "--ir", str(tmp_path / "ir"),
            "--vis", str(tmp_path / "vis"),
            "--fused", str(tmp_path / "avg"), str(tmp_path / "copy"),
            "--names", *names,
            "--csv", str(tmp_path / "t.csv"),
            "--json", str(tmp_path / "t.json"),
            "--quiet",
        ]
    )  # fmt: skip
    assert code == 1  # some items failed; all the others were measured
    captured = capsys.readouterr()
    assert "Mean over 3 pairs" in captured.out
    assert "5 of 6 items failed" in captured.out
    err = captured.err.splitlines()
    prefix = "resfuse metrics: failed "
    assert err[-5].startswith(f"{prefix}a / copy: scd is undefined")
    assert err[-4].startswith(f"{prefix}b / avg: --fused: cannot read")
    assert err[-3].startswith(f"{prefix}b / copy: scd is undefined")
    assert err[-2].startswith(f"{prefix}c / avg: infrared and fused must have the same shape")
    assert err[-1].startswith(f"{prefix}c / copy: scd is undefined")

    rows = _read_csv(tmp_path / "t.csv")
    assert list(rows[0]) == ["pair", "method", *names, "error"]
    by_item = {(r["pair"], r["method"]): r for r in rows}
    ir, vis, average = triples["a"]
    expected = compute_metrics(ir, vis, average, names=names)
    assert by_item[("a", "avg")]["error"] == ""
    assert [float(by_item[("a", "avg")][n]) for n in names] == [expected[n] for n in names]
    assert math.isnan(float(by_item[("b", "avg")]["std"]))
    assert "cannot read" in by_item[("b", "avg")]["error"]
    copy_a = by_item[("a", "copy")]
    assert float(copy_a["std"]) == compute_metrics(ir, vis, ir, names=["std"])["std"]
    assert math.isnan(float(copy_a["scd"])) and copy_a["error"].startswith("scd is undefined")
    # The means use the pairs where a value exists; a metric failing everywhere has a NaN mean.
    assert float(by_item[("mean", "avg")]["std"]) == expected["std"]
    assert math.isnan(float(by_item[("mean", "copy")]["scd"]))

    document = json.loads((tmp_path / "t.json").read_text())
    assert [(f["pair"], f["method"]) for f in document["failed"]] == [
        ("a", "copy"), ("b", "avg"), ("b", "copy"), ("c", "avg"), ("c", "copy"),
    ]  # fmt: skip
    assert document["rows"][2]["std"] is None and "cannot read" in document["rows"][2]["error"]
    assert "error" not in document["rows"][0]


def test_file_mode_exit_codes_are_documented_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["metrics", "--help"])
    assert "1 some items failed, 2 usage or input error" in capsys.readouterr().out
