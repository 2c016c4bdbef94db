"""The benchmark's figures, ratios, goals and tables, from made-up wrk results."""

from __future__ import annotations

from typing import Any

from bench.load import OPS, figures, median_of
from bench.report import compare, goals, table


def run(rps: float, p99_ms: float = 10.0, non2xx: int = 0) -> dict[str, Any]:
    return {"rps": rps, "p50_ms": p99_ms / 2, "p90_ms": p99_ms, "p99_ms": p99_ms,
            "non2xx": non2xx, "socket_errors": 0}  # fmt: skip


def results(rps: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """A SQLite run where each operation served (Rujukan, baseline) requests/s."""
    ceiling = median_of([run(1000.0)])
    return {
        "config": {"scale_rows": 10_000},
        "databases": {
            "sqlite": {
                "rows": 1_000_000,
                "ceiling": ceiling,
                "ops": {
                    op: compare(median_of([run(r)]), median_of([run(b)]), ceiling)
                    for op, (r, b) in rps.items()
                },
                "unloaded": {op: {"rujukan": run(1.0), "baseline": run(1.0)} for op in OPS},
                "list_small_p99_ms": 40.0,
                "list_large_p99_ms": 50.0,
                "mixed_writes": {"non2xx": 3, "socket_errors": 0},
                "peak_rss_mib": {"rujukan": [150.0, 160.0]},
            }
        },
    }


def test_wrk_result_becomes_requests_per_second_and_milliseconds() -> None:
    raw = {"requests": 3000, "duration_us": 2_000_000, "p50_us": 1500, "p90_us": 4000,
           "p99_us": 9000, "max_us": 12000, "non2xx": 2, "socket_errors": 1}  # fmt: skip
    assert figures(raw) == {
        "rps": 1500.0, "p50_ms": 1.5, "p90_ms": 4.0, "p99_ms": 9.0, "max_ms": 12.0,
        "requests": 3000, "non2xx": 2, "socket_errors": 1,
    }  # fmt: skip


def test_rounds_are_summed_up_by_their_medians_and_total_errors() -> None:
    summary = median_of([run(100.0, 30.0, 1), run(300.0, 10.0), run(200.0, 20.0, 2)])
    assert (summary["rps"], summary["p99_ms"], summary["non2xx"]) == (200.0, 20.0, 3)
    assert len(summary["runs"]) == 3


def test_ratio_to_the_baseline_and_share_of_the_ceiling() -> None:
    assert compare(run(300.0), run(200.0), run(1000.0))["ratio"] == 1.5
    assert compare(run(300.0), run(200.0), run(1000.0))["ceiling_share"] == 0.3
    assert compare(run(300.0), run(0.0), run(0.0))["ratio"] is None


def test_goals_are_met_at_each_operations_floor_and_missed_below_it() -> None:
    r = results({"get": (99.0, 100.0), "list": (100.0, 100.0), "create": (80.0, 100.0),
                 "assess": (79.0, 100.0)})  # fmt: skip
    met = {check["goal"]: check["met"] for check in goals(r)}
    assert met["sqlite get >= 1.0x baseline req/s"] is False
    assert met["sqlite list >= 1.0x baseline req/s"] is True
    assert met["sqlite create >= 0.8x baseline req/s"] is True
    assert met["sqlite assess >= 0.8x baseline req/s"] is False
    assert met["sqlite 0 non-2xx, 64 connections of mixed writes"] is False
    assert met["sqlite peak RSS per Rujukan worker < 200 MiB"] is True
    assert met["sqlite list p99 at 1,000,000 rows <= 1.5x p99 at 10,000, < 100 ms"] is True


def test_table_has_a_row_per_operation_with_its_ratio_and_a_line_per_goal() -> None:
    r = results({op: (150.0, 100.0) for op in OPS})
    r["goals"] = goals(r)
    lines = table(r).splitlines()
    assert lines[0] == (
        "| database | operation | Rujukan req/s | p50 ms | p99 ms | baseline req/s | p50 ms "
        "| p99 ms | Rujukan/baseline | share of ceiling |"
    )
    assert "| sqlite | create | 150 | 5.0 | 10.0 | 100 | 5.0 | 10.0 | **1.50x** | 15.0% |" in lines
    assert "| sqlite | ceiling (bare FastAPI) | 1000 | 5.0 | 10.0 | | | | | 100% |" in lines
    assert "| sqlite assess >= 0.8x baseline req/s | 1.5 | yes |" in lines
    assert "| sqlite 0 non-2xx, 64 connections of mixed writes | 3 | NO |" in lines
