"""`rujukan serve` as a real subprocess: its own process group, so it can be SIGKILLed whole."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.config import Settings

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes the `rujukan` command use these settings (and `extra`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUJUKAN_")}
    env.update(
        {
            "RUJUKAN_DATABASE_URL": settings.database_url,
            "RUJUKAN_ENV": "dev",
            "RUJUKAN_SIGNING_KEY_FILE": str(settings.signing_key_file),
            "RUJUKAN_DATA_KEY_FILE": str(settings.data_key_file),
            "RUJUKAN_TOKEN_TTL_SECONDS": str(settings.token_ttl_seconds),
            "RUJUKAN_RATE_LIMIT": settings.rate_limit,
            "RUJUKAN_TOKEN_FAILURE_LIMIT": settings.token_failure_limit,
            "RUJUKAN_TOKEN_ADDRESS_FAILURE_LIMIT": settings.token_address_failure_limit,
            "RUJUKAN_LOG_LEVEL": "WARNING",
        }
    )
    env.update({f"RUJUKAN_{k.upper()}": v for k, v in extra.items()})
    return env


def rujukan(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the `rujukan` command against these settings."""
    return subprocess.run(
        [str(VENV_BIN / "rujukan"), *args],
        env=service_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Served:
    """A running `rujukan serve --workers N`."""

    process: subprocess.Popen
    base_url: str
    log: Path

    def kill(self) -> None:
        """SIGKILL the server and its workers (the whole process group), as a power cut would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Ask the server to shut down, and kill it if it does not."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass


def serve(
    settings: Settings, log: Path, *, workers: int = 2, timeout: float = 60, **extra_env: str
) -> Served:
    """Start `rujukan serve` on a free port and wait until every worker answers /healthz."""
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [
                str(VENV_BIN / "rujukan"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=service_env(settings, **extra_env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    answered = 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rujukan serve exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            # Fresh connections land on either worker; a few answers in a row mean both are up.
            if httpx.get(f"{served.base_url}/readyz", timeout=2).status_code == 200:
                answered += 1
                if answered >= 3:
                    return served
        except httpx.HTTPError:
            answered = 0
        time.sleep(0.05)
    served.kill()
    raise RuntimeError("rujukan serve did not become ready in time")
