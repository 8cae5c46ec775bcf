"""Tests of the metric registry, compute_metrics and the tables (napari_resfuse.metrics.table)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

import napari_resfuse.metrics as M
from napari_resfuse.metrics import (
    DIRECTIONS,
    MEAN_PAIR,
    METRIC_NAMES,
    METRICS,
    best_cells,
    compute_metrics,
    format_markdown,
    format_text,
    metrics_table,
    write_csv,
    write_json,
    write_markdown,
)

EXPECTED_NAMES = (
    "entropy",
    "std",
    "spatial_frequency",
    "average_gradient",
    "mutual_information",
    "qabf",
    "fmi_pixel",
    "fmi_dct",
    "fmi_wavelet",
    "nabf",
    "scd",
    "ssim_sum",
    "vif",
    "psnr",
    "cc",
)
FAST = ["std", "psnr", "cc"]


def _triple(seed: int, shape=(64, 64)):
    """A smooth infrared-like image, a textured visible one and their average as 'fused'."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    ir = 120 + 100 * np.exp(-((yy - shape[0] / 2) ** 2 + (xx - shape[1] / 3) ** 2) / 150.0)
    ir = np.clip(ir + rng.normal(0, 5, shape), 0, 255).astype(np.uint8)
    vis = np.clip(128 + 60 * np.sin(xx / 3.0) * np.cos(yy / 5.0) + rng.normal(0, 10, shape), 0, 255)
    vis = vis.astype(np.uint8)
    fused = ((ir.astype(np.int32) + vis) // 2).astype(np.uint8)
    return ir, vis, fused


def test_registry_names_order_and_directions():
    assert METRIC_NAMES == EXPECTED_NAMES
    assert tuple(METRICS) == EXPECTED_NAMES
    assert tuple(DIRECTIONS) == EXPECTED_NAMES
    assert set(DIRECTIONS.values()) == {"higher", "lower"}
    assert [name for name, d in DIRECTIONS.items() if d == "lower"] == ["nabf"]
    for name in EXPECTED_NAMES:
        assert callable(getattr(M, name))
    assert set(M.__all__) >= set(EXPECTED_NAMES) | {"compute_metrics", "metrics_table", "fmi"}


def test_compute_metrics_returns_every_key_in_order_with_finite_values():
    ir, vis, fused = _triple(0)
    values = compute_metrics(ir, vis, fused)
    assert tuple(values) == EXPECTED_NAMES
    assert all(isinstance(v, float) and math.isfinite(v) for v in values.values()), values
    # Each value is the registered function's value.
    for name in ("std", "spatial_frequency", "qabf", "ssim_sum", "vif", "cc"):
        assert values[name] == METRICS[name](ir, vis, fused)
    assert values["entropy"] == M.entropy(fused)


def test_compute_metrics_selection_is_in_table_order():
    ir, vis, fused = _triple(1)
    values = compute_metrics(ir, vis, fused, names=["cc", "std", "cc"])
    assert list(values) == ["std", "cc"]
    assert list(compute_metrics(ir, vis, fused, names="psnr")) == ["psnr"]


def test_compute_metrics_rejects_bad_names_and_inputs_up_front():
    ir, vis, fused = _triple(2)
    with pytest.raises(ValueError, match="unknown metric 'sharpness'"):
        compute_metrics(ir, vis, fused, names=["std", "sharpness"])
    with pytest.raises(ValueError, match="at least one"):
        compute_metrics(ir, vis, fused, names=[])
    with pytest.raises(ValueError, match="visible"):
        compute_metrics(ir, vis[:, :40], fused)
    bad = fused.astype(float)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="fused"):
        compute_metrics(ir, vis, bad)


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


def _table(names=FAST):
    triples = []
    for pair_index in range(2):
        ir, vis, fused = _triple(10 + pair_index)
        triples.append((f"p{pair_index}", "average", ir, vis, fused))
        triples.append((f"p{pair_index}", "infrared", ir, vis, ir))
    return triples, metrics_table(iter(triples), names=names)


def test_metrics_table_rows_and_means():
    triples, rows = _table()
    assert [(r["pair"], r["method"]) for r in rows] == [
        ("p0", "average"),
        ("p0", "infrared"),
        ("p1", "average"),
        ("p1", "infrared"),
        (MEAN_PAIR, "average"),
        (MEAN_PAIR, "infrared"),
    ]
    for row, (_, _, ir, vis, fused) in zip(rows, triples, strict=False):
        assert list(row) == ["pair", "method", *FAST]
        assert row["cc"] == compute_metrics(ir, vis, fused, names=["cc"])["cc"]
    for k, method in ((4, "average"), (5, "infrared")):
        for name in FAST:
            by_hand = sum(r[name] for r in rows[:4] if r["method"] == method) / 2
            assert rows[k][name] == pytest.approx(by_hand, rel=1e-15)


def test_metrics_table_errors_name_the_entry():
    ir, vis, fused = _triple(3)
    flat = np.full_like(fused, 7)
    with pytest.raises(ValueError, match="pair 'a', method 'flat': cc is undefined"):
        metrics_table([("a", "ok", ir, vis, fused), ("a", "flat", ir, vis, flat)], names=["cc"])
    with pytest.raises(ValueError, match="appears twice"):
        metrics_table([("a", "m", ir, vis, fused), ("a", "m", ir, vis, fused)], names=["std"])
    with pytest.raises(ValueError, match="reserved"):
        metrics_table([(MEAN_PAIR, "m", ir, vis, fused)], names=["std"])


def test_best_cells_follow_each_direction_and_skip_lone_rows():
    rows = [
        {"pair": "a", "method": "x", "psnr": 30.0, "nabf": 0.2, "cc": 0.5},
        {"pair": "a", "method": "y", "psnr": 20.0, "nabf": 0.1, "cc": 0.5},
        {"pair": "a", "method": "z", "psnr": math.nan, "nabf": 0.3, "cc": 0.4},
        {"pair": "b", "method": "x", "psnr": 1.0, "nabf": 1.0, "cc": 1.0},
    ]
    assert best_cells(rows) == {(0, "psnr"), (1, "nabf"), (0, "cc"), (1, "cc")}


def test_format_text_marks_best_and_directions():
    rows = [
        {"pair": "a", "method": "x", "nabf": 0.2, "psnr": 30.0},
        {"pair": "a", "method": "y", "nabf": 0.1, "psnr": math.inf},
        {"pair": MEAN_PAIR, "method": "x", "nabf": 0.2, "psnr": 30.0},
        {"pair": MEAN_PAIR, "method": "y", "nabf": 0.1, "psnr": math.inf},
    ]
    text = format_text(rows, digits=3)
    assert text.splitlines()[0].split() == ["metric", "better", "x", "y"]
    assert text.splitlines()[2].split() == ["nabf", "lower", "0.200", "0.100*"]
    assert text.splitlines()[3].split() == ["psnr", "higher", "30.000", "inf*"]
    assert text.isascii()
    assert format_text(rows, pair="a", names=["psnr"]).splitlines()[2].split()[1] == "higher"
    with pytest.raises(ValueError, match="no rows for 'b'"):
        format_text(rows, pair="b")


def test_format_text_of_a_computed_table():
    _, rows = _table()
    lines = format_text(rows).splitlines()
    assert [line.split()[0] for line in lines[2:]] == FAST
    assert lines[0].split() == ["metric", "better", "average", "infrared"]
    # Two methods with different values: exactly one best mark per metric line.
    assert all(line.count("*") == 1 for line in lines[2:])


def test_format_markdown_has_arrows_and_bold_best():
    rows = [
        {"pair": "a", "method": "x", "nabf": 0.2, "cc": 0.9},
        {"pair": "a", "method": "y", "nabf": 0.1, "cc": 0.8},
    ]
    text = format_markdown(rows, digits=2)
    lines = text.splitlines()
    assert lines[0] == "| pair | method | nabf ↓ | cc ↑ |"
    assert lines[1] == "|---|---|---:|---:|"
    assert lines[2] == "| a | x | 0.20 | **0.90** |"
    assert lines[3] == "| a | y | **0.10** | 0.80 |"


def test_writers_round_trip(tmp_path):
    rows = [
        {"pair": "a", "method": "x", "psnr": math.inf, "cc": 1 / 3},
        {"pair": MEAN_PAIR, "method": "x", "psnr": math.inf, "cc": 1 / 3},
    ]
    with (write_csv(rows, tmp_path / "t.csv")).open(newline="") as handle:
        read = list(csv.reader(handle))
    assert read[0] == ["pair", "method", "psnr", "cc"]
    assert read[1][:3] == ["a", "x", "inf"]
    assert float(read[1][3]) == 1 / 3  # full precision

    document = json.loads(write_json(rows, tmp_path / "t.json").read_text())
    assert document["metrics"] == ["psnr", "cc"]
    assert document["directions"] == {"psnr": "higher", "cc": "higher"}
    assert document["rows"][0] == {"pair": "a", "method": "x", "psnr": None, "cc": 1 / 3}

    markdown = write_markdown(rows, tmp_path / "t.md").read_text(encoding="utf-8")
    assert "| a | x | inf | 0.3333 |" in markdown


# --------------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------------


def test_every_table_derives_from_the_one_registry():
    assert tuple(metric.name for metric in M.REGISTRY) == METRIC_NAMES
    assert {metric.name: metric.direction for metric in M.REGISTRY} == DIRECTIONS
    assert {metric.name: metric.func for metric in M.REGISTRY} == METRICS
    assert all(metric.reference for metric in M.REGISTRY)
    metric = M.REGISTRY[0]
    with pytest.raises(AttributeError):
        metric.direction = "lower"  # frozen
    with pytest.raises(ValueError, match="direction"):
        M.Metric("x", M.std, "up", "nowhere", metric.core)


def test_resolve_names_orders_deduplicates_and_names_the_argument():
    assert M.resolve_names(["cc", "std", "cc"]) == ("std", "cc")
    assert M.resolve_names(None) == METRIC_NAMES
    assert M.resolve_names("psnr") == ("psnr",)
    with pytest.raises(ValueError, match="--names: unknown metric 'x'; choose from entropy, std"):
        M.resolve_names(["x"], label="--names")
    with pytest.raises(ValueError, match="metrics: select at least one metric"):
        M.resolve_names([], label="metrics")


def test_each_core_gives_its_public_function_value():
    ir, vis, fused = _triple(3)
    values = compute_metrics(ir, vis, fused)
    for metric in M.REGISTRY:
        assert values[metric.name] == metric.func(ir, vis, fused), metric.name


def test_compute_metrics_validates_the_triple_once(monkeypatch):
    from napari_resfuse.metrics import _validate

    calls = []
    real = _validate.to_unit_float

    def counting(name, image):
        calls.append(name)
        return real(name, image)

    monkeypatch.setattr(_validate, "to_unit_float", counting)
    ir, vis, fused = _triple(4)
    compute_metrics(ir, vis, fused)
    assert calls == ["infrared", "visible", "fused"]
    calls.clear()
    M.qabf(ir, vis, fused)  # a metric called directly still validates its inputs
    assert calls == ["infrared", "visible", "fused"]


# --------------------------------------------------------------------------------------------------
# One input rule, whatever the type (issue 13, item 9)
# --------------------------------------------------------------------------------------------------


def test_same_pixels_as_uint8_float_or_uint16_give_the_same_metrics():
    ir, vis, fused = _triple(5)
    assert ir.min() > 0 or ir.max() < 255  # not full range: a per-image stretch would change it
    expected = compute_metrics(ir, vis, fused)
    as_float = compute_metrics(ir / 255.0, vis / 255.0, fused / 255.0)
    as_uint16 = compute_metrics(*(x.astype(np.uint16) * 257 for x in (ir, vis, fused)))
    assert as_float == expected
    assert as_uint16 == expected
    mixed = compute_metrics(ir, vis.astype(np.uint16) * 257, fused / 255.0)
    assert mixed == expected


def test_float_outside_0_1_is_an_error_naming_the_input():
    ir, vis, fused = _triple(6)
    with pytest.raises(ValueError, match=r"^fused is a float image with values in \[\d+, \d+\]"):
        compute_metrics(ir, vis, fused.astype(np.float64))


# --------------------------------------------------------------------------------------------------
# Going on past failed entries (issue 13, item 6)
# --------------------------------------------------------------------------------------------------


def test_metrics_table_can_record_failed_entries_and_go_on(tmp_path):
    ir, vis, fused = _triple(7)
    triples = [
        ("p0", "avg", ir, vis, fused),
        ("p0", "copy", ir, vis, ir),  # scd undefined
        ("p1", "avg", ir, vis, ValueError("--fused: cannot read x.png as an image (bad)\nmore")),
        ("p2", "avg", ir, vis, fused[:, :40]),  # shapes differ
    ]
    with pytest.raises(ValueError, match="pair 'p0', method 'copy': scd is undefined"):
        metrics_table(iter(triples), names=["std", "scd"])
    rows = metrics_table(iter(triples), names=["std", "scd"], on_error="record")
    expected = compute_metrics(ir, vis, fused, names=["std", "scd"])
    assert rows[0] == {"pair": "p0", "method": "avg", **expected}
    assert rows[1]["std"] == compute_metrics(ir, vis, ir, names="std")["std"]
    assert math.isnan(rows[1]["scd"]) and rows[1][M.ERROR_KEY].startswith("scd is undefined")
    assert math.isnan(rows[2]["std"]) and math.isnan(rows[2]["scd"])
    assert rows[2]["error"] == "--fused: cannot read x.png as an image (bad)"  # one line
    assert rows[3]["error"].startswith("infrared and fused must have the same shape")
    assert M.failed_rows(rows) == rows[1:4]
    mean_avg = rows[4]
    assert (mean_avg["pair"], mean_avg["method"]) == (MEAN_PAIR, "avg")
    assert mean_avg["std"] == expected["std"]  # the failed p1, p2 are left out
    assert math.isnan(rows[5]["scd"])  # no pair has it: NaN, not an error
    assert M.ERROR_KEY not in mean_avg

    write_csv(rows, tmp_path / "t.csv")
    with (tmp_path / "t.csv").open(newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["pair", "method", "std", "scd", "error"]
    assert table[1][-1] == "" and table[3][2] == "nan"
    write_json(rows, tmp_path / "t.json")
    document = json.loads((tmp_path / "t.json").read_text())
    assert [f["pair"] for f in document["failed"]] == ["p0", "p1", "p2"]
    assert document["rows"][2]["std"] is None
    text = format_text(rows, pair="p1")
    assert "nan" in text
    with pytest.raises(ValueError, match="on_error must be"):
        metrics_table(iter(triples), on_error="skip")


def test_tables_without_failures_keep_their_format(tmp_path):
    _, rows = _table()
    write_csv(rows, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == "pair,method,std,psnr,cc"
    write_json(rows, tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text())["failed"] == []


def test_iter_metrics_validates_once_and_goes_on_past_undefined_metrics(monkeypatch):
    from napari_resfuse.metrics import _validate

    calls = []
    real = _validate.to_unit_float
    monkeypatch.setattr(_validate, "to_unit_float", lambda n, x: calls.append(n) or real(n, x))
    ir, vis, _ = _triple(8)
    steps = list(M.iter_metrics(ir, vis, ir, names=["scd", "std", "cc"]))
    assert calls == ["infrared", "visible", "fused"]
    assert [name for name, _, _ in steps] == ["std", "scd", "cc"]  # table order
    assert steps[0] == ("std", compute_metrics(ir, vis, ir, names="std")["std"], None)
    assert math.isnan(steps[1][1]) and steps[1][2].startswith("scd is undefined")
    assert steps[2][2] is None
    with pytest.raises(ValueError, match="fused"):
        next(M.iter_metrics(ir, vis, ir[:, :10]))
