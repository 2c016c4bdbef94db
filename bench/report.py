"""The results: the JSON in bench/results, the ratios to the baseline, the goals, tables, chart."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.common import log
from bench.databases import CLIENTS_PER_AGENCY
from bench.load import CONNECTIONS, GUESSERS, MIXED_CONNECTIONS, OPS, READERS, WRK_THREADS
from bench.processes import WORKERS
from bench.seed import AGENCIES

# The least Rujukan/baseline ratio of requests/s each operation is to reach (issue 6).
FLOORS = {"get": 1.0, "list": 1.0, "create": 0.8, "assess": 0.8}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average_at_start": os.getloadavg(),
    }


def new_results(args: argparse.Namespace) -> dict[str, Any]:
    """The record of a run, before any database is measured."""
    return {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            "rows": args.rows,
            "scale_rows": args.scale_rows,
            "rounds": args.rounds,
            "seconds_per_run": args.duration,
            "connections": CONNECTIONS,
            "workers": WORKERS,
            "wrk_threads": WRK_THREADS,
            "clients": CLIENTS_PER_AGENCY * len(AGENCIES),
        },
        "databases": {},
    }


def compare(rujukan: dict[str, Any], baseline: dict[str, Any], ceiling: dict[str, Any]) -> dict:
    """One operation's medians, Rujukan's requests/s as a ratio to the baseline's and as a share
    of the ceiling's (None where the other served nothing)."""
    return {
        "rujukan": rujukan,
        "baseline": baseline,
        "ratio": round(rujukan["rps"] / baseline["rps"], 2) if baseline["rps"] else None,
        "ceiling_share": round(rujukan["rps"] / ceiling["rps"], 3) if ceiling["rps"] else None,
    }


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal of issue 6 with the measured value and whether it is met."""
    checks = []
    for kind, r in results["databases"].items():
        if "guessing" in r:
            g = r["guessing"]
            alone, under = g["read_alone"]["p99_ms"], g["read_while_guessing"]["p99_ms"]
            checks.append(
                {"goal": f"{kind} inbox read p99 while {GUESSERS} connections guess client "
                         f"secrets < 2x its p99 alone ({READERS} connections)",
                 "value": f"{under:.1f} ms vs {alone:.1f} ms ({g['p99_ratio']}x)",
                 "met": g["p99_ratio"] is not None and g["p99_ratio"] < 2}
            )  # fmt: skip
        if "ops" not in r:
            continue
        for op, floor in FLOORS.items():
            ratio = r["ops"][op]["ratio"]
            checks.append(
                {"goal": f"{kind} {op} >= {floor}x baseline req/s", "value": ratio,
                 "met": ratio is not None and ratio >= floor}
            )  # fmt: skip
        small, large = r["list_small_p99_ms"], r["list_large_p99_ms"]
        checks.append(
            {"goal": f"{kind} list p99 at {r['rows']:,} rows <= 1.5x p99 at "
                     f"{results['config']['scale_rows']:,}, < 100 ms",
             "value": f"{large:.1f} ms vs {small:.1f} ms ({large / small:.2f}x)",
             "met": large <= 1.5 * small and large < 100}
        )  # fmt: skip
        if "mixed_writes" in r:
            bad = r["mixed_writes"]["non2xx"] + r["mixed_writes"]["socket_errors"]
            checks.append(
                {"goal": f"sqlite 0 non-2xx, {MIXED_CONNECTIONS} connections of mixed writes",
                 "value": bad,
                 "met": bad == 0}
            )  # fmt: skip
        peak = max(r["peak_rss_mib"].get("rujukan") or [0])
        checks.append(
            {"goal": f"{kind} peak RSS per Rujukan worker < 200 MiB", "value": f"{peak} MiB",
             "met": 0 < peak < 200}
        )  # fmt: skip
    return checks


def _ops_tables(full: dict[str, dict[str, Any]]) -> list[str]:
    """Each operation against the baseline and the ceiling, then each at 1 connection."""
    lines = [
        "| database | operation | Rujukan req/s | p50 ms | p99 ms | baseline req/s | p50 ms "
        "| p99 ms | Rujukan/baseline | share of ceiling |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, r in full.items():
        for op in OPS:
            o = r["ops"][op]
            ruj, base = o["rujukan"], o["baseline"]
            lines.append(
                f"| {kind} | {op} | {ruj['rps']:.0f} | {ruj['p50_ms']:.1f} | {ruj['p99_ms']:.1f} "
                f"| {base['rps']:.0f} | {base['p50_ms']:.1f} | {base['p99_ms']:.1f} "
                f"| **{o['ratio']:.2f}x** | {o['ceiling_share']:.1%} |"
            )
        c = r["ceiling"]
        lines.append(
            f"| {kind} | ceiling (bare FastAPI) | {c['rps']:.0f} | {c['p50_ms']:.1f} "
            f"| {c['p99_ms']:.1f} | | | | | 100% |"
        )
    lines.append("")
    lines.append("| database | operation | unloaded p50 / p99 ms, Rujukan | baseline |")
    lines.append("| --- | --- | ---: | ---: |")
    for kind, r in full.items():
        for op in OPS:
            u = r["unloaded"][op]
            lines.append(
                f"| {kind} | {op} | {u['rujukan']['p50_ms']:.1f} / {u['rujukan']['p99_ms']:.1f} "
                f"| {u['baseline']['p50_ms']:.1f} / {u['baseline']['p99_ms']:.1f} |"
            )
    lines.append("")
    return lines


def _guessing_table(results: dict[str, Any]) -> list[str]:
    """The inbox read alone and while strangers guess client secrets."""
    lines = [
        f"| database | inbox read ({READERS} connections) | p50 / p99 ms | req/s "
        f"| guesses/s ({GUESSERS} connections) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for kind, r in results["databases"].items():
        if "guessing" not in r:
            continue
        g = r["guessing"]
        for label, read, guesses in (("alone", g["read_alone"], ""),
                                     ("while guessing", g["read_while_guessing"],
                                      f"{g['guesses']['rps']:.0f}")):  # fmt: skip
            lines.append(
                f"| {kind} | {label} | {read['p50_ms']:.1f} / {read['p99_ms']:.1f} "
                f"| {read['rps']:.0f} | {guesses} |"
            )
    lines.append("")
    return lines


def table(results: dict[str, Any]) -> str:
    """The results as Markdown tables (printed, and pasted into docs/performance.md)."""
    full = {kind: r for kind, r in results["databases"].items() if "ops" in r}
    lines = _ops_tables(full) if full else []
    lines += _guessing_table(results)
    lines.append("| goal | measured | met |")
    lines.append("| --- | --- | --- |")
    for check in results["goals"]:
        lines.append(f"| {check['goal']} | {check['value']} | {'yes' if check['met'] else 'NO'} |")
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> None:
    """Requests/s per operation, Rujukan beside the baseline, with the ceiling marked."""
    kinds = [kind for kind, r in results["databases"].items() if "ops" in r]
    if not kinds:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        r = results["databases"][kind]
        xs = range(len(OPS))
        ruj = [r["ops"][op]["rujukan"]["rps"] for op in OPS]
        base = [r["ops"][op]["baseline"]["rps"] for op in OPS]
        ax.bar([x - 0.2 for x in xs], ruj, 0.4, label="Rujukan")
        ax.bar([x + 0.2 for x in xs], base, 0.4, label="tutorial baseline")
        for x, op in zip(xs, OPS, strict=True):
            ax.annotate(f"{r['ops'][op]['ratio']:.2f}x", (x - 0.2, ruj[x]), ha="center",
                        va="bottom", fontsize=8)  # fmt: skip
        ax.axhline(r["ceiling"]["rps"], color="grey", linestyle="--", linewidth=1)
        ax.text(len(OPS) - 0.5, r["ceiling"]["rps"], "bare FastAPI", ha="right", va="bottom",
                fontsize=8, color="grey")  # fmt: skip
        ax.set_xticks(list(xs), OPS)
        ax.set_yscale("log")
        ax.set_ylabel(f"requests/s ({WORKERS} workers, {CONNECTIONS} connections)")
        ax.set_title(f"{kind}, {r['rows']:,} referrals")
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def finish(results: dict[str, Any], started: float, output: str, only: str | None) -> None:
    """Close the record; write its JSON and chart beside `output`; print the tables."""
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["minutes"] = round((time.time() - started) / 60, 1)
    results["goals"] = goals(results)
    out = Path(output)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    chart(results, out.with_suffix(".png"))
    print(table(results))
    chart_note = "" if only else f" and {out.with_suffix('.png')}"
    log(f"wrote {out.with_suffix('.json')}{chart_note}")
