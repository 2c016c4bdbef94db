"""Delay from commit to webhook delivery, and recovery after a receiver outage.

Runs the real processes on loopback: `rujukan serve` (with the embedded dispatcher, or
without it plus one or more `rujukan worker`), a receiver, and a client that creates
referrals at a steady rate. The delay of an event is its arrival at the receiver minus its
`occurred_at` (stamped in the action's transaction, just before commit).

    .venv/bin/python bench/webhook_delay.py --mode embedded --events 200
    .venv/bin/python bench/webhook_delay.py --mode worker --workers 2 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/rujukan_bench
    .venv/bin/python bench/webhook_delay.py --mode embedded --events 40 --outage 30
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent


class Receiver:
    """Records (arrival time, webhook-id, payload); can be switched off and on."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.arrivals: list[tuple[float, str, dict[str, Any]]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrivals.append((time.time(), self.headers["webhook-id"], json.loads(body)))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("embedded", "worker"), default="embedded")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="referrals created per second")
    parser.add_argument("--outage", type=float, default=0.0, help="receiver down this long")
    parser.add_argument("--api-port", type=int, default=8102)
    parser.add_argument("--receiver-port", type=int, default=8101)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rujukan-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUJUKAN_")}
    env.update(
        RUJUKAN_DATABASE_URL=args.database_url or f"sqlite:///{work / 'rujukan.db'}",
        RUJUKAN_SIGNING_KEY_FILE=str(work / "signing-keys.pem"),
        RUJUKAN_DATA_KEY_FILE=str(work / "data-keys.json"),
        RUJUKAN_PORT=str(args.api_port),
        RUJUKAN_RATE_LIMIT="100000/minute",
        RUJUKAN_EMBEDDED_DISPATCHER="1" if args.mode == "embedded" else "0",
        RUJUKAN_LOG_LEVEL="ERROR",
    )
    if args.outage:
        # A short schedule so the outage fits in a run: 1 s, 2 s, 4 s, ... capped at 8 s.
        env.update(
            RUJUKAN_WEBHOOK_BACKOFF_BASE_SECONDS="1", RUJUKAN_WEBHOOK_BACKOFF_MAX_SECONDS="8"
        )

    def cli(*argv: str) -> str:
        return subprocess.run(  # noqa: S603 - our own command, fixed arguments
            [str(BIN / "rujukan"), *argv],
            env=env,
            cwd=work,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    cli("migrate")
    client = json.loads(
        cli(
            "client",
            "create",
            "--agency",
            "LPSK",
            "--name",
            "bench",
            "--scope",
            "referrals:write webhooks:manage",
        )
    )

    def start(command: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
            [str(BIN / "rujukan"), command],
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    procs = [start("serve")]
    if args.mode == "worker":
        procs += [start("worker") for _ in range(args.workers)]
    receiver = Receiver(args.receiver_port)
    receiver.start()
    base = f"http://127.0.0.1:{args.api_port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(600):
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            token = http.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client["client_id"],
                    "client_secret": client["client_secret"],
                },
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            sub = http.post(
                "/v1/webhook-subscriptions",
                headers=auth,
                json={
                    "url": f"http://127.0.0.1:{args.receiver_port}/hook",
                    "event_types": ["referral.created"],
                },
            ).json()
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.support import referral_body

            if args.outage:
                receiver.stop()
                down_at = time.time()
            started = time.time()
            for i in range(args.events):
                response = http.post("/v1/referrals", json=referral_body("KEMENSOS"), headers=auth)
                assert response.status_code == 201, response.text
                time.sleep(max(0.0, started + (i + 1) / args.rate - time.time()))
            if args.outage:
                time.sleep(max(0.0, down_at + args.outage - time.time()))
                up_at = time.time()
                receiver.start()
            deadline = time.time() + 120 + args.outage
            while len({a[1] for a in receiver.arrivals}) < args.events and time.time() < deadline:
                time.sleep(0.05)
            deliveries = http.get(
                f"/v1/webhook-subscriptions/{sub['id']}/deliveries",
                params={"limit": 200},
                headers=auth,
            ).json()["items"]
    finally:
        receiver.stop()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)

    unique = {a[1] for a in receiver.arrivals}
    first_arrival: dict[str, float] = {}
    for at, msg_id, payload in receiver.arrivals:
        occurred = dt.datetime.fromisoformat(payload["data"]["occurred_at"].replace("Z", "+00:00"))
        first_arrival.setdefault(msg_id, at - occurred.timestamp())
    delays = [d * 1000 for d in first_arrival.values()]
    report: dict[str, Any] = {
        "mode": args.mode,
        "workers": args.workers if args.mode == "worker" else 0,
        "database": "postgresql" if args.database_url else "sqlite",
        "events": args.events,
        "delivered": len(unique),
        "duplicates": len(receiver.arrivals) - len(unique),
        "delay_ms_median": round(statistics.median(delays), 1),
        "delay_ms_p95": round(percentile(delays, 0.95), 1),
        "delay_ms_max": round(max(delays), 1),
    }
    if args.outage:
        attempts = [len(d["attempts"]) for d in deliveries]
        report.update(
            outage_s=args.outage,
            all_delivered_s_after_receiver_up=round(
                max(at for at, _, _ in receiver.arrivals) - up_at, 1
            ),
            attempts_per_delivery={str(n): attempts.count(n) for n in sorted(set(attempts))},
            dead=sum(d["status"] == "dead" for d in deliveries),
            example_attempt_times=[a["started_at"] for a in deliveries[-1]["attempts"]],
        )
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
