"""The load: wrk runs of each operation (bench/wrk.lua), their figures, the scenarios."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import seed
from bench.common import ROOT, VAR, log
from bench.databases import Database
from bench.processes import Server

LUA = ROOT / "bench" / "wrk.lua"
OPS = ("get", "list", "create", "assess")
CONNECTIONS = 32  # of the loaded runs
MIXED_CONNECTIONS = 64  # of the mixed-writes soak
WRK_THREADS = 2
# The guessing scenario: strangers sending client secrets, beside clients reading their inbox.
GUESSERS, READERS = 12, 4


def fetch_tokens(server: Server, db: Database) -> Path:
    """Real access tokens of every benchmark client, from POST /oauth/token."""
    lines = []
    for client in db.clients:
        form = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": client["client_id"],
                "client_secret": client["secret"],
            }
        ).encode()
        with urllib.request.urlopen(server.base + "/oauth/token", form, timeout=10) as answer:  # noqa: S310
            lines.append(f"{client['agency']} {json.load(answer)['access_token']}")
    path = VAR / f"tokens-{db.kind}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Workload:
    """Rows handed to wrk: a sample to read, and unused referred rows to assess."""

    get_rows: Path
    assess_pool: list[str]
    client_ids: Path
    used: int = 0
    nik_block: int = 0
    # Last measured assess rate per (target, connections), to hand out just enough rows.
    rates: dict[tuple[str, int], float] = field(default_factory=dict)

    def assess_file(self, count: int) -> Path:
        """A file of `count` referred rows no earlier run has assessed."""
        rows = self.assess_pool[self.used : self.used + count]
        self.used += count
        if len(rows) < count:
            log("assess pool exhausted: reused rows will be refused (409) and counted")
            rows += self.assess_pool[: count - len(rows)]
        path = VAR / "assess-rows.txt"
        path.write_text("\n".join(rows) + "\n")
        return path

    def next_nik_base(self) -> int:
        self.nik_block += 1
        return self.nik_block * 10_000_000


def workload(db: Database) -> Workload:
    """Sample the seeded rows (recomputed from the deterministic seed, not queried)."""
    get_rows, referred = [], []
    stride = max(1, db.rows // 20_000)
    for i, (rid, from_agency, to_agency, status) in enumerate(seed.iter_seeded(db.rows)):
        if i % stride == 0:
            get_rows.append(f"{rid} {from_agency} {to_agency}")
        if status == "referred":
            referred.append(f"{rid} {from_agency} {to_agency}")
    path = VAR / f"get-rows-{db.kind}.txt"
    path.write_text("\n".join(get_rows) + "\n")
    client_ids = VAR / f"client-ids-{db.kind}.txt"
    client_ids.write_text("".join(f"{c['client_id']}\n" for c in db.clients))
    # Spread the consumption over the whole table, not only the oldest rows.
    referred = referred[::-1][::3] + referred[::-1][1::3] + referred[::-1][2::3]
    return Workload(get_rows=path, assess_pool=referred, client_ids=client_ids)


def _rate(raw: dict[str, int]) -> float:
    return raw["requests"] / (raw["duration_us"] / 1e6)


def figures(raw: dict[str, int]) -> dict[str, Any]:
    """Requests/s, latency percentiles (ms) and error counts from wrk.lua's BENCH_RESULT."""
    return {
        "rps": round(_rate(raw), 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "requests": raw["requests"],
        "non2xx": raw["non2xx"],
        "socket_errors": raw["socket_errors"],
    }


def wrk(
    server: Server,
    op: str,
    *,
    connections: int,
    seconds: float,
    tokens: Path | None,
    load: Workload,
) -> dict[str, Any]:
    """Run wrk once; requests/s, latency percentiles (ms), non-2xx count."""
    threads = 1 if connections == 1 else WRK_THREADS
    env = dict(os.environ)
    env.update(
        BENCH_OP=op if server.name != "ceiling" else "ceiling",
        BENCH_TARGET=server.name,
        BENCH_THREADS=str(threads),
        BENCH_NIK_BASE=str(load.next_nik_base()),
    )
    if tokens is not None:
        env["BENCH_TOKENS"] = str(tokens)
    if op == "get":
        env["BENCH_ROWS"] = str(load.get_rows)
    elif op == "guess":
        env["BENCH_ROWS"] = str(load.client_ids)
    elif op in ("assess", "mixed"):
        rate = load.rates.get((server.name, connections), 1500.0 if connections > 1 else 400.0)
        env["BENCH_ROWS"] = str(load.assess_file(int(rate * 2 * seconds) + 100))
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
        "-s", str(LUA), server.base,
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            raw = json.loads(line.removeprefix("BENCH_RESULT "))
            if op == "assess":
                load.rates[(server.name, connections)] = _rate(raw)
            return figures(raw)
    raise SystemExit(f"wrk failed for {server.name} {op}: {done.stdout}\n{done.stderr}")


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the runs' figures, with the runs themselves."""
    keys = ("rps", "p50_ms", "p90_ms", "p99_ms")
    summary = {k: round(statistics.median(r[k] for r in runs), 2) for k in keys}
    summary["non2xx"] = sum(r["non2xx"] for r in runs)
    summary["socket_errors"] = sum(r["socket_errors"] for r in runs)
    summary["runs"] = runs
    return summary


def repeated(
    server: Server, op: str, tokens: Path | None, load: Workload, *, rounds: int, seconds: float
) -> dict[str, Any]:
    """Medians of `rounds` runs of one operation at CONNECTIONS connections."""
    runs = [
        wrk(server, op, connections=CONNECTIONS, seconds=seconds, tokens=tokens, load=load)
        for _ in range(rounds)
    ]
    return median_of(runs)


def warm_up(running: dict[str, Server], token_of: dict[str, Path | None], load: Workload) -> None:
    """A short run of reads on each target, to warm up caches and connections."""
    for name in ("rujukan", "baseline", "ceiling"):
        wrk(running[name], "get", connections=8, seconds=2, tokens=token_of[name], load=load)


def interleaved_rounds(
    kind: str,
    running: dict[str, Server],
    token_of: dict[str, Path | None],
    load: Workload,
    *,
    rounds: int,
    seconds: float,
) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, Any]]:
    """Each operation on Rujukan and the baseline in rounds (they alternate who goes first),
    and the ceiling once a round; medians per operation and target, and the ceiling's."""
    loaded: dict[str, dict[str, list]] = {op: {"rujukan": [], "baseline": []} for op in OPS}
    ceiling_runs = []
    for round_no in range(rounds):
        order = ("rujukan", "baseline") if round_no % 2 == 0 else ("baseline", "rujukan")
        for op in OPS:
            for name in order:
                result = wrk(
                    running[name], op, connections=CONNECTIONS, seconds=seconds,
                    tokens=token_of[name], load=load,
                )  # fmt: skip
                loaded[op][name].append(result)
                log(f"{kind} round {round_no + 1} {op:6} {name:8} {result['rps']:8.1f} req/s "
                    f"p99 {result['p99_ms']:.1f} ms non-2xx {result['non2xx']}")  # fmt: skip
        ceiling_runs.append(
            wrk(running["ceiling"], "ceiling", connections=CONNECTIONS, seconds=seconds,
                tokens=None, load=load)
        )  # fmt: skip
    medians = {op: {name: median_of(runs) for name, runs in loaded[op].items()} for op in OPS}
    return medians, median_of(ceiling_runs)


def unloaded(
    running: dict[str, Server], token_of: dict[str, Path | None], load: Workload, *, seconds: float
) -> dict[str, dict[str, dict[str, Any]]]:
    """Each operation at 1 connection, on Rujukan and the baseline."""
    return {
        op: {
            name: wrk(running[name], op, connections=1, seconds=seconds, tokens=token_of[name],
                      load=load)
            for name in ("rujukan", "baseline")
        }
        for op in OPS
    }  # fmt: skip


def mixed_writes(server: Server, tokens: Path, load: Workload, *, seconds: float) -> dict[str, Any]:
    """Creates and assessments at MIXED_CONNECTIONS connections; the non-2xx are counted."""
    mixed = wrk(
        server, "mixed", connections=MIXED_CONNECTIONS, seconds=seconds, tokens=tokens, load=load
    )
    log(f"sqlite mixed writes: {mixed['non2xx']} non-2xx of {mixed['requests']}")
    return {"connections": MIXED_CONNECTIONS, "seconds": seconds, **mixed}


def guessing(
    server: Server, tokens: Path, load: Workload, *, rounds: int, seconds: float
) -> dict[str, Any]:
    """The inbox read at READERS connections, alone and while GUESSERS connections send wrong
    client secrets (for real client ids and unknown ones) to /oauth/token; medians of rounds."""
    unloaded, loaded, guesses = [], [], []
    for _ in range(rounds):
        unloaded.append(
            wrk(server, "list", connections=READERS, seconds=seconds, tokens=tokens, load=load)
        )
        with ThreadPoolExecutor(max_workers=1) as pool:
            guess = pool.submit(
                wrk, server, "guess", connections=GUESSERS, seconds=seconds + 2, tokens=None,
                load=load,
            )  # fmt: skip
            time.sleep(1)  # the guessers are at full speed before the reads start
            loaded.append(
                wrk(server, "list", connections=READERS, seconds=seconds, tokens=tokens,
                    load=load)
            )  # fmt: skip
            guesses.append(guess.result())
    alone, under = median_of(unloaded), median_of(loaded)
    return {
        "guessers": GUESSERS,
        "readers": READERS,
        "seconds": seconds,
        "read_alone": alone,
        "read_while_guessing": under,
        "guesses": median_of(guesses),
        "p99_ratio": round(under["p99_ms"] / alone["p99_ms"], 2) if alone["p99_ms"] else None,
    }


def log_guessing(kind: str, result: dict[str, Any]) -> None:
    """One progress line with the guessing scenario's figures."""
    log(f"{kind} inbox p99 {result['read_alone']['p99_ms']:.1f} ms alone, "
        f"{result['read_while_guessing']['p99_ms']:.1f} ms while {GUESSERS} connections guess "
        f"secrets at {result['guesses']['rps']:.0f} req/s ({result['p99_ratio']}x)")  # fmt: skip
