"""The bench's report writer and its target verdicts: pure Python, no services, no TensorFlow."""

from __future__ import annotations

import json

import pytest

from bench import summary
from bench.report import Report, clear_generated, fmt, md_table, ratio, write


def test_fmt_and_ratio():
    assert fmt(None) == "n/a"
    assert fmt(float("nan")) == "n/a"
    assert fmt(1234.567) == "1,234.6"
    assert fmt(0.12345, 3) == "0.123"
    assert fmt(100_000) == "100,000"
    assert ratio(30.0, 10.0) == "x3.00"
    assert ratio(1.0, 0.0) == "n/a"
    assert ratio(None, 2.0) == "n/a"


def test_md_table_aligns_and_escapes():
    text = md_table(["name", "value"], [["a|b", "1.0"]])
    assert text.splitlines() == ["| name | value |", "|---|---:|", "| a\\|b | 1.0 |"]
    with pytest.raises(ValueError, match="3 cells for 2 columns"):
        md_table(["a", "b"], [[1, 2, 3]])


def test_write_lists_what_was_not_produced_and_clears_old_files(tmp_path):
    (tmp_path / "stale.png").write_bytes(b"old")
    (tmp_path / "keep.txt").write_text("not ours")
    removed = clear_generated(tmp_path)
    assert [p.name for p in removed] == ["stale.png"]
    assert (tmp_path / "keep.txt").exists()

    report = Report(title="Lookbook benchmarks", header=["machine line"])
    section = report.section("2b. Selectors")
    section.table(["p95 ms"], [[fmt(3.21, 2)]])
    section.figure("sweep.png", "latency vs recall")
    report.not_produced("selectors at 1,000,000 vectors", "too slow on 2 cores")
    report.failed("2d. Pages", "RuntimeError: gunicorn exited")
    report.results["selectors"] = {"p95": 3.21}
    path = write(report, tmp_path)

    text = path.read_text()
    assert text.startswith("# Lookbook benchmarks\n\nmachine line\n\n## 2b. Selectors")
    assert "| 3.21 |" in text
    assert "![latency vs recall](sweep.png)" in text
    assert "- **selectors at 1,000,000 vectors**: too slow on 2 cores" in text
    assert "- **2d. Pages** failed: `RuntimeError: gunicorn exited`" in text
    assert json.loads((tmp_path / "results.json").read_text()) == {"selectors": {"p95": 3.21}}


def _case(p95: float, recall: float) -> dict:
    return {
        "default_ef": 100,
        "exact_p50": 50.0,
        "sweep": [{"ef_search": 40, "p95": 1.0, "recall": 0.5}, {"ef_search": 100, "p95": p95, "recall": recall}],
    }


def test_targets_judge_only_what_was_measured():
    results = {
        "quality": {
            "full_protocol": True,
            "scores": {
                "off-the-shelf": {"regions": {"s2i_map21_seed": 25.0, "s2i_r6": 40.0, "i2s_r1": 4.0}},
                "trained, ArcFace": {"regions": {"s2i_map21_seed": 67.0, "s2i_r6": 97.0, "i2s_r1": 24.0}},
            },
        },
        "selectors": {
            "scales": [
                {"items": 10_000, "cases": [_case(2.0, 1.0)]},
                {"items": 100_000, "cases": [_case(9.0, 0.99), _case(16.0, 0.97)]},
            ]
        },
    }
    rows = {row[1]: (row[2], row[3]) for row in summary.targets(results)}
    assert rows["trained (ArcFace) s→i mAP@21 (seed) ≥ 55"] == ("67.0", "**met**")
    assert rows["trained (ArcFace) i→s R@1 ≥ 25"] == ("24.0", "**missed**")
    assert rows["trained beats off-the-shelf in both directions (s→i mAP@21, i→s R@1)"][1] == "**met**"
    selector = next(v for k, v in rows.items() if k.startswith("selector p95"))
    assert selector == ("100,000 items: worst p95 16.00 ms, worst recall 0.970", "**missed**")  # the default ef only
    assert rows["upload query end to end p95 < 300 ms (CPU)"] == ("n/a", "not measured")

    results["quality"]["full_protocol"] = False  # quick mode: a verdict on a subset says so
    rows = {row[1]: row[3] for row in summary.targets(results)}
    assert rows["trained (ArcFace) s→i mAP@21 (seed) ≥ 55"] == "**met** on a val subset (the full run decides)"
