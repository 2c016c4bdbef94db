"""The servers under test: Rujukan (and its webhook worker), the baseline and the ceiling."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import BIN, ROOT, VAR
from bench.databases import Database, server_env

PORTS = range(8141, 8160)
WORKERS = 2  # web workers of each server


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
    raise SystemExit(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


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
    """Rujukan, baseline and ceiling (as asked) with WORKERS workers each, stopped afterwards."""
    env = server_env(db.url)
    if baseline_url:
        env["BASELINE_DATABASE_URL"] = baseline_url
    started: dict[str, Server] = {}
    uvicorn = [str(BIN / "uvicorn"), "--host", "127.0.0.1", "--workers", str(WORKERS)]
    try:
        for name in which:
            port = free_port(taken)
            if name == "rujukan":
                cmd = [str(BIN / "rujukan"), "serve", "--host", "127.0.0.1", "--workers",
                       str(WORKERS), "--port", str(port)]  # fmt: skip
                started[name] = start(name, cmd, port, env, "/healthz")
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


def peak_rss_mib(server: Server) -> list[float]:
    """Peak resident memory (VmHWM) of each worker, in MiB."""
    peaks = []
    for pid in server.workers():
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(round(int(line.split()[1]) / 1024, 1))
    return peaks
