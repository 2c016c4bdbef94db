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
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402

from bench import seed  # noqa: E402

VAR = ROOT / "var" / "bench"
RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "wrk.lua"
BIN = Path(sys.executable).parent
OPS = ("get", "list", "create", "assess")
PORTS = range(8141, 8160)
CLIENTS_PER_AGENCY = 2
SCOPES = "referrals:read referrals:write referrals:assess"
WRK_THREADS = 2
# The guessing scenario: strangers sending client secrets, beside clients reading their inbox.
GUESSERS, READERS = 12, 4


def log(message: str) -> None:
    """Progress on stderr, so the table on stdout stays clean."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port(taken: set[int]) -> int:
    """A free port of the benchmark's range."""
    for port in PORTS:
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise SystemExit("no free port in 8141-8159")


# ---- databases ------------------------------------------------------------------------------


@dataclass
class Database:
    """One benchmark database: its URL and what was seeded into it."""

    kind: str
    url: str
    rows: int
    seed_seconds: float = 0.0
    clients: list[dict[str, str]] = field(default_factory=list)


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RUJUKAN_DATABASE_URL=url,
        RUJUKAN_ENV="dev",
        RUJUKAN_SIGNING_KEY_FILE=str(VAR / "signing-keys.pem"),
        RUJUKAN_DATA_KEY_FILE=str(VAR / "data-keys.json"),
        RUJUKAN_TOKEN_TTL_SECONDS="3600",  # noqa: S106 - a lifetime, not a secret
        # The per-client quota (600/minute by default) would turn a load test into a 429
        # test: 60,000 a minute for each of the 6 clients stays above what 2 workers serve
        # here, and the limiter still counts every request in its moving window.
        RUJUKAN_RATE_LIMIT="60000/minute",
        # As behind a TLS proxy: the guessers of the guessing scenario send X-Forwarded-For,
        # each guess from another address, so that the failed-authentication limits (kept at
        # their defaults) stop none of them and every secret is checked.
        RUJUKAN_PROXY_HEADERS="1",
        RUJUKAN_FORWARDED_ALLOW_IPS="127.0.0.1",
        # As in production: webhooks are sent by a `rujukan worker` process started beside
        # the web workers (see `servers`), not by a thread inside each of them.
        RUJUKAN_EMBEDDED_DISPATCHER="0",
        BASELINE_DATABASE_URL=url,
    )
    return env


def postgres_admin_url() -> str | None:
    """The server to create benchmark databases on, if one answers."""
    url = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    try:
        import psycopg

        with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=3):
            return url
    except Exception as exc:  # noqa: BLE001 - any failure means: skip PostgreSQL
        log(f"PostgreSQL not reachable ({type(exc).__name__}); benchmarking SQLite only")
        return None


def fresh_database(kind: str, rows: int, admin_url: str | None) -> Database:
    """An empty, migrated database of this kind, named after its size."""
    from service.db import upgrade_to_head

    name = f"rujukan_bench_{rows}"
    if kind == "sqlite":
        path = VAR / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{suffix}").unlink()
        url = f"sqlite:///{path}"
    else:
        import psycopg

        assert admin_url is not None
        with psycopg.connect(admin_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        url = admin_url.rsplit("/", 1)[0] + "/" + name
    os.environ.update(_env(url))
    upgrade_to_head(url)
    return Database(kind=kind, url=url, rows=rows)


def copy_for_baseline(db: Database, admin_url: str | None) -> str:
    """An identical copy of the seeded database for the baseline; its URL.

    The two must not share rows: the baseline stores what it is sent without sealing it,
    and Rujukan would then meet unsealed rows in its lists (and the baseline's reads would
    depend on what Rujukan wrote before).
    """
    started = time.perf_counter()
    if db.kind == "sqlite":
        source = Path(make_url(db.url).database or "")
        target = source.with_name(source.stem + "_baseline.db")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{target}{suffix}").unlink()
        with sqlite3.connect(source) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(source, target)
        url = f"sqlite:///{target}"
    else:
        import psycopg

        assert admin_url is not None
        name = make_url(db.url).database
        with psycopg.connect(admin_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}_baseline WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}_baseline TEMPLATE {name}")
        url = admin_url.rsplit("/", 1)[0] + f"/{name}_baseline"
    log(f"copied the database for the baseline in {time.perf_counter() - started:.1f} s")
    return url


def seed_database(db: Database) -> None:
    """Bulk-seed the referrals and register the benchmark's clients."""
    from service.audit import trail
    from service.auth import clients
    from service.config import Settings
    from service.context import ServiceContext

    settings = Settings()
    ctx = ServiceContext.build(settings)  # creates the dev keys on the first run
    try:
        log(f"seeding {db.rows:,} referrals into {db.kind}")
        db.seed_seconds = seed.seed_referrals(db.url, db.rows, str(settings.data_key_path))
        log(f"seeded in {db.seed_seconds:.1f} s")
        with ctx.db.writer() as session:
            for agency in seed.AGENCIES:
                for n in range(CLIENTS_PER_AGENCY):
                    client, secret = clients.create_client(
                        session,
                        agency=agency,
                        name=f"bench {agency} {n}",
                        scope=SCOPES,
                        keyring=ctx.keyring,
                    )
                    trail.append(
                        session,
                        action="client.create",
                        agency=None,
                        client_id=None,
                        detail={"client": client.client_id, "client_agency": agency},
                    )
                    db.clients.append(
                        {"agency": agency, "client_id": client.client_id, "secret": secret}
                    )
            session.commit()
    finally:
        ctx.db.dispose()


# ---- servers --------------------------------------------------------------------------------


@dataclass
class Server:
    """A server started by the benchmark, in its own process group."""

    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """Pids of the worker processes (children that are not multiprocessing helpers)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid and b"resource_tracker" not in cmdline:
                pids.append(int(stat.parent.name))
        return pids or [self.process.pid]  # a single-process server is its own worker

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start(
    name: str, command: list[str], port: int, env: dict[str, str], probe: str | None
) -> Server:
    """Start a server and wait until it answers (at once when it has no `probe` URL)."""
    logfile = open(VAR / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(  # noqa: S603 - fixed commands
        command, env=env, cwd=ROOT, stdout=logfile, stderr=logfile, start_new_session=True
    )
    server = Server(name, port, process)
    if probe is None:
        return server
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited; see {VAR / (name + '.log')}")
        try:
            with urllib.request.urlopen(server.base + probe, timeout=2):  # noqa: S310
                return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise SystemExit(f"{name} did not start; see {VAR / (name + '.log')}")


@contextlib.contextmanager
def servers(
    db: Database, taken: set[int], which: tuple[str, ...], baseline_url: str | None = None
) -> Iterator[dict[str, Server]]:
    """Rujukan, baseline and ceiling (as asked) with 2 workers each, stopped afterwards."""
    env = _env(db.url)
    if baseline_url:
        env["BASELINE_DATABASE_URL"] = baseline_url
    started: dict[str, Server] = {}
    uvicorn = [str(BIN / "uvicorn"), "--host", "127.0.0.1", "--workers", "2"]
    try:
        for name in which:
            port = free_port(taken)
            if name == "rujukan":
                cmd = [str(BIN / "rujukan"), "serve", "--host", "127.0.0.1", "--workers", "2"]
                started[name] = start(name, [*cmd, "--port", str(port)], port, env, "/healthz")
                # The webhook dispatcher beside the web workers (it serves no HTTP).
                worker = [str(BIN / "rujukan"), "worker"]
                started["rujukan-worker"] = start("rujukan-worker", worker, 0, env, None)
            elif name == "baseline":
                cmd = [*uvicorn, "--port", str(port), "bench.baseline:app"]
                started[name] = start(name, cmd, port, env, "/openapi.json")
            else:
                cmd = [*uvicorn, "--port", str(port), "bench.ceiling:app"]
                started[name] = start(name, cmd, port, env, "/")
        yield started
    finally:
        for server in started.values():
            server.stop()
            taken.discard(server.port)


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


# ---- wrk ------------------------------------------------------------------------------------


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
            seconds_run = raw["duration_us"] / 1e6
            if op == "assess":
                load.rates[(server.name, connections)] = raw["requests"] / seconds_run
            return {
                "rps": round(raw["requests"] / seconds_run, 1),
                "p50_ms": raw["p50_us"] / 1000,
                "p90_ms": raw["p90_us"] / 1000,
                "p99_ms": raw["p99_us"] / 1000,
                "max_ms": raw["max_us"] / 1000,
                "requests": raw["requests"],
                "non2xx": raw["non2xx"],
                "socket_errors": raw["socket_errors"],
            }
    raise SystemExit(f"wrk failed for {server.name} {op}: {done.stdout}\n{done.stderr}")


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the runs' figures, with the runs themselves."""
    keys = ("rps", "p50_ms", "p90_ms", "p99_ms")
    summary = {k: round(statistics.median(r[k] for r in runs), 2) for k in keys}
    summary["non2xx"] = sum(r["non2xx"] for r in runs)
    summary["socket_errors"] = sum(r["socket_errors"] for r in runs)
    summary["runs"] = runs
    return summary


def peak_rss_mib(server: Server) -> list[float]:
    """Peak resident memory (VmHWM) of each worker, in MiB."""
    peaks = []
    for pid in server.workers():
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(round(int(line.split()[1]) / 1024, 1))
    return peaks


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
    log(f"{kind} inbox p99 {result['read_alone']['p99_ms']:.1f} ms alone, "
        f"{result['read_while_guessing']['p99_ms']:.1f} ms while {GUESSERS} connections guess "
        f"secrets at {result['guesses']['rps']:.0f} req/s ({result['p99_ratio']}x)")  # fmt: skip


# ---- one database ---------------------------------------------------------------------------


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
        runs = []
        for _ in range(args.rounds):
            runs.append(
                wrk(running["rujukan"], "list", connections=32, seconds=args.duration,
                    tokens=tokens, load=small_load)
            )  # fmt: skip
        out["list_small"] = median_of(runs)
        log(f"{kind} list at {small.rows:,} rows: p99 {out['list_small']['p99_ms']} ms")

    db = fresh_database(kind, args.rows, admin_url)
    seed_database(db)
    out["rows"] = db.rows
    out["seed_seconds"] = round(db.seed_seconds, 1)
    out["baseline_copy_seconds"] = 0.0
    started = time.perf_counter()
    baseline_url = copy_for_baseline(db, admin_url)
    out["baseline_copy_seconds"] = round(time.perf_counter() - started, 1)
    load = workload(db)
    with servers(db, taken, ("rujukan", "baseline", "ceiling"), baseline_url) as running:
        tokens = fetch_tokens(running["rujukan"], db)
        token_of = {"rujukan": tokens, "baseline": None, "ceiling": None}
        for name in ("rujukan", "baseline", "ceiling"):  # warm up caches and connections
            wrk(running[name], "get", connections=8, seconds=2, tokens=token_of[name], load=load)

        loaded: dict[str, dict[str, list]] = {op: {"rujukan": [], "baseline": []} for op in OPS}
        ceiling_runs = []
        for round_no in range(args.rounds):
            order = ("rujukan", "baseline") if round_no % 2 == 0 else ("baseline", "rujukan")
            for op in OPS:
                for name in order:
                    result = wrk(
                        running[name], op, connections=32, seconds=args.duration,
                        tokens=token_of[name], load=load,
                    )  # fmt: skip
                    loaded[op][name].append(result)
                    log(f"{kind} round {round_no + 1} {op:6} {name:8} {result['rps']:8.1f} req/s "
                        f"p99 {result['p99_ms']:.1f} ms non-2xx {result['non2xx']}")  # fmt: skip
            ceiling_runs.append(
                wrk(running["ceiling"], "ceiling", connections=32, seconds=args.duration,
                    tokens=None, load=load)
            )  # fmt: skip
        ceiling = median_of(ceiling_runs)
        out["ceiling"] = ceiling
        out["ops"] = {}
        for op in OPS:
            ruj, base = median_of(loaded[op]["rujukan"]), median_of(loaded[op]["baseline"])
            out["ops"][op] = {
                "rujukan": ruj,
                "baseline": base,
                "ratio": round(ruj["rps"] / base["rps"], 2) if base["rps"] else None,
                "ceiling_share": round(ruj["rps"] / ceiling["rps"], 3) if ceiling["rps"] else None,
            }

        out["unloaded"] = {}
        for op in OPS:
            out["unloaded"][op] = {
                name: wrk(running[name], op, connections=1, seconds=args.unloaded_duration,
                          tokens=token_of[name], load=load)
                for name in ("rujukan", "baseline")
            }  # fmt: skip

        out["guessing"] = guessing(
            running["rujukan"], tokens, load, rounds=args.rounds, seconds=args.duration
        )
        log_guessing(kind, out["guessing"])

        if kind == "sqlite":
            mixed = wrk(
                running["rujukan"], "mixed", connections=64, seconds=args.mixed_duration,
                tokens=tokens, load=load,
            )  # fmt: skip
            out["mixed_writes"] = {"connections": 64, "seconds": args.mixed_duration, **mixed}
            log(f"sqlite mixed writes: {mixed['non2xx']} non-2xx of {mixed['requests']}")

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


# ---- report ---------------------------------------------------------------------------------


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
        for op, floor in (("get", 1.0), ("list", 1.0), ("create", 0.8), ("assess", 0.8)):
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
                {"goal": "sqlite 0 non-2xx, 64 connections of mixed writes", "value": bad,
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
        ax.set_ylabel("requests/s (2 workers, 32 connections)")
        ax.set_title(f"{kind}, {r['rows']:,} referrals")
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


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
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            "rows": args.rows,
            "scale_rows": args.scale_rows,
            "rounds": args.rounds,
            "seconds_per_run": args.duration,
            "connections": 32,
            "workers": 2,
            "wrk_threads": WRK_THREADS,
            "clients": CLIENTS_PER_AGENCY * 3,
        },  # fmt: skip
        "databases": {},
    }
    admin_url = None
    for kind in args.databases.split(","):
        if kind == "postgresql":
            admin_url = postgres_admin_url()
            if admin_url is None:
                continue
            import psycopg

            with psycopg.connect(admin_url.replace("+psycopg", "")) as conn:
                results["machine"]["postgresql"] = conn.info.server_version
        measure = bench_guessing if args.only == "guessing" else bench_database
        results["databases"][kind] = measure(kind, args, admin_url)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["minutes"] = round((time.time() - started) / 60, 1)
    results["goals"] = goals(results)
    out = Path(args.output)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    chart(results, out.with_suffix(".png"))
    print(table(results))
    chart_note = "" if args.only else f" and {out.with_suffix('.png')}"
    log(f"wrote {out.with_suffix('.json')}{chart_note}")


if __name__ == "__main__":
    main()
