"""Section 2b's writer on measured-looking results: verdicts at the shipped ef_search, the sweep, the 1M note."""

from __future__ import annotations

from bench.scale import section


def _case(direction: str, label: str, points: list[tuple[int, float, float]], default_ef: int) -> dict:
    return {
        "direction": direction,
        "filter": label,
        "default_ef": default_ef,
        "plan": "hnsw",
        "exact_p50": 40.0,
        "exact_p95": 55.0,
        "sweep": [
            {"ef_search": ef, "p50": p95 / 2, "p95": p95, "recall": recall, "short_answers": 0}
            for ef, p95, recall in points
        ],
    }


def test_write_judges_the_default_ef_and_lists_every_point(bench_ctx, tmp_path):
    ctx = bench_ctx
    fast_but_poor = _case("snapshot → items", "none", [(10, 2.0, 0.80), (40, 4.0, 0.97)], default_ef=10)
    good = _case("item → snapshots", "style ~10%", [(10, 2.0, 0.80), (40, 4.0, 0.97)], default_ef=40)
    scale = {"items": 10_000, "snapshots": 2_000, "fill_s": 30.0, "index_s": 60.0, "cases": [fast_but_poor, good]}
    section.write(ctx, {"postgres": "PostgreSQL 17", "pgvector": "0.8.0", "scales": [scale]})

    (sec,) = ctx.report.sections
    assert sec.title == "2b. Selector latency and recall at scale"
    table = sec.blocks[1].splitlines()
    assert table[2] == (
        "| 10,000 items / 2,000 snapshots | snapshot → items | none | 1.00 | 2.00 | 0.800 | 40.0 | 55.0 | x40.0 "
        "| hnsw | missed |"
    )
    assert table[3].endswith("| 2.00 | 4.00 | 0.970 | 40.0 | 55.0 | x20.0 | hnsw | met |")
    assert "10,000 items: fill 30 s, HNSW build 60 s." in sec.blocks[2]
    assert (tmp_path / "selector_ef_sweep.png").stat().st_size > 0
    every_point = sec.blocks[5].splitlines()
    assert len(every_point) == 2 + 4  # header, rule, 2 cases x 2 ef_search values
    assert every_point[2] == "| 10k | snapshot → items | none | 10 | 1.00 | 2.00 | 0.800 | 0 |"
    ((what, why),) = ctx.report.missing
    assert what == "selectors at 1,000,000 vectors"
    assert "10,000 items took 90 s in this run" in why and why.endswith("`make bench` adds 100k")
