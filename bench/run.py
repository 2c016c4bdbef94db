"""`make bench`: Rujukan against the tutorial baseline and a bare ceiling, on SQLite and PostgreSQL.

For each database: seed a small (10,000 rows) and a large database in bulk, start Rujukan, the
baseline and the ceiling with 2 workers each, and drive each operation with wrk in interleaved
rounds (Rujukan and baseline alternate who goes first), quoting medians. Then unloaded latency
(1 connection), the inbox read while strangers guess client secrets at /oauth/token, the
mixed-write soak (SQLite), and peak memory per worker. Writes bench/results/latest.json and
latest.png and prints the table.

`--only guessing` runs the secret-guessing scenario alone, on a database of `--rows` referrals.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, VAR, log  # noqa: E402
from bench.databases import (  # noqa: E402
    copy_for_baseline,
    fresh_database,
    postgres_admin_url,
    postgres_version,
    seed_database,
)
from bench.load import (  # noqa: E402
    OPS,
    READERS,
    fetch_tokens,
    guessing,
    interleaved_rounds,
    log_guessing,
    mixed_writes,
    repeated,
    unloaded,
    warm_up,
    workload,
    wrk,
)
from bench.processes import peak_rss_mib, servers  # noqa: E402
from bench.report import compare, finish, new_results  # noqa: E402


def bench_database(kind: str, args: argparse.Namespace, admin_url: str | None) -> dict[str, Any]:
    """Every measurement on one kind of database."""
    taken: set[int] = set()
    out: dict[str, Any] = {}

    # Scale: list p99 on a small table, to compare with the large one below.
    small = fresh_database(kind, args.scale_rows, admin_url)
    seed_database(small)
    small_load = workload(small)
    with servers(small, taken, ("rujukan",)) as running:
        tokens = fetch_tokens(running["rujukan"], small)
        out["list_small"] = repeated(
            running["rujukan"], "list", tokens, small_load, rounds=args.rounds,
            seconds=args.duration,
        )  # fmt: skip
        log(f"{kind} list at {small.rows:,} rows: p99 {out['list_small']['p99_ms']} ms")

    db = fresh_database(kind, args.rows, admin_url)
    seed_database(db)
    out["rows"] = db.rows
    out["seed_seconds"] = round(db.seed_seconds, 1)
    baseline_url = copy_for_baseline(db, admin_url)
    out["baseline_copy_seconds"] = round(db.baseline_copy_seconds, 1)
    load = workload(db)
    with servers(db, taken, ("rujukan", "baseline", "ceiling"), baseline_url) as running:
        tokens = fetch_tokens(running["rujukan"], db)
        token_of = {"rujukan": tokens, "baseline": None, "ceiling": None}
        warm_up(running, token_of, load)
        medians, ceiling = interleaved_rounds(
            kind, running, token_of, load, rounds=args.rounds, seconds=args.duration
        )
        out["ceiling"] = ceiling
        out["ops"] = {
            op: compare(medians[op]["rujukan"], medians[op]["baseline"], ceiling) for op in OPS
        }
        out["unloaded"] = unloaded(running, token_of, load, seconds=args.unloaded_duration)
        out["guessing"] = guessing(
            running["rujukan"], tokens, load, rounds=args.rounds, seconds=args.duration
        )
        log_guessing(kind, out["guessing"])
        if kind == "sqlite":
            out["mixed_writes"] = mixed_writes(
                running["rujukan"], tokens, load, seconds=args.mixed_duration
            )
        out["peak_rss_mib"] = {name: peak_rss_mib(running[name]) for name in running}
    out["list_large_p99_ms"] = out["ops"]["list"]["rujukan"]["p99_ms"]
    out["list_small_p99_ms"] = out["list_small"]["p99_ms"]
    return out


def bench_guessing(kind: str, args: argparse.Namespace, admin_url: str | None) -> dict[str, Any]:
    """The guessing scenario alone, on a database of `args.rows` referrals."""
    db = fresh_database(kind, args.rows, admin_url)
    seed_database(db)
    load = workload(db)
    with servers(db, set(), ("rujukan",)) as running:
        tokens = fetch_tokens(running["rujukan"], db)
        wrk(running["rujukan"], "list", connections=READERS, seconds=2, tokens=tokens, load=load)
        result = guessing(
            running["rujukan"], tokens, load, rounds=args.rounds, seconds=args.duration
        )
    log_guessing(kind, result)
    return {"rows": db.rows, "guessing": result}


def main() -> None:
    """Parse the options, run every measurement, write and print the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--scale-rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--unloaded-duration", type=float, default=5.0)
    parser.add_argument("--mixed-duration", type=float, default=30.0)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--output", default=str(RESULTS / "latest"))
    parser.add_argument(
        "--only", choices=["guessing"], help="run one scenario alone (on --rows referrals)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: install it with `sudo apt-get install -y wrk`")
    VAR.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results = new_results(args)
    admin_url = None
    for kind in args.databases.split(","):
        if kind == "postgresql":
            admin_url = postgres_admin_url()
            if admin_url is None:
                continue
            results["machine"]["postgresql"] = postgres_version(admin_url)
        measure = bench_guessing if args.only == "guessing" else bench_database
        results["databases"][kind] = measure(kind, args, admin_url)
    finish(results, started, args.output, args.only)


if __name__ == "__main__":
    main()
