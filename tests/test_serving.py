"""`rujukan serve` for real: several worker processes, metrics summed over them, graceful stop.

Each test starts the console script in a subprocess on a free loopback port, as an operator
would, and talks to it over HTTP.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest
import sqlalchemy.exc
import uvicorn
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from service import errors
from service.app import create_app
from service.audit.models import AuditEntry
from service.auth import clients
from service.config import Settings
from service.context import ServiceContext
from service.db import SQLITE_POOL_SIZE, upgrade_to_head
from service.referrals.models import Referral, ReferralHistory
from tests.support import ALL_SCOPES, Api, assess_body, referral_body, service_body, writer_session
from tests.support.databases import POSTGRES_URL, make_settings
from tests.support.dockerfile import final_stage
from tests.support.roles import owner_and_service_roles

BIN = Path(sys.executable).parent
RUJUKAN = BIN / "rujukan"
REPO = Path(__file__).resolve().parent.parent
# Servers on free loopback ports, and timings: one after another on one xdist worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("served")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(url: str, key_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUJUKAN_", "PROMETHEUS"))}
    env.update(
        RUJUKAN_DATABASE_URL=url,
        RUJUKAN_SIGNING_KEY_FILE=str(key_dir / "signing-keys.pem"),
        RUJUKAN_DATA_KEY_FILE=str(key_dir / "data-keys.json"),
        RUJUKAN_RATE_LIMIT="100000/minute",
        RUJUKAN_MIGRATIONS_DIR=str(REPO / "migrations"),
    )
    return env


@dataclass
class Server:
    """A `rujukan serve` process and what it wrote to stderr."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    healthz_calls: int = field(default=0)

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], workdir: Path, port: int) -> Server:
        log_path = workdir / f"server-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
            )
        server = cls(process, f"http://127.0.0.1:{port}", log_path)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited {process.returncode}:\n{server.log()}")
            try:
                server.healthz_calls += 1
                if httpx.get(server.base_url + "/healthz", timeout=2).status_code == 200:
                    return server
            except httpx.TransportError:
                server.healthz_calls -= 1  # never reached the application
            if time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"the server did not start:\n{server.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, as an orchestrator stops a container; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Deployment:
    url: str
    key_dir: Path
    workdir: Path
    ctx: ServiceContext

    def serve(self, workers: int = 2) -> Server:
        port = free_port()
        argv = [str(RUJUKAN), "serve", "--port", str(port), "--workers", str(workers)]
        return Server.start(argv, base_env(self.url, self.key_dir), self.workdir, port)

    def token(self, server: Server, agency: str) -> str:
        with writer_session(self.ctx.db) as session:
            client, secret = clients.create_client(
                session, agency=agency, name=f"{agency} system", scope=ALL_SCOPES,
                keyring=self.ctx.keyring,
            )
            session.commit()
        response = httpx.post(
            server.base_url + "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": client.client_id,
                  "client_secret": secret},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]  # type: ignore[no-any-return]


@pytest.fixture
def deployment(
    backend: str, new_database_url, tmp_path: Path  # type: ignore[no-untyped-def]
) -> Iterator[Deployment]:
    """A fresh migrated database and dev keys, shared by this test and its server."""
    url = new_database_url(backend)
    upgrade_to_head(url)
    ctx = ServiceContext.build(make_settings(url, tmp_path / "keys"))
    try:
        yield Deployment(url, tmp_path / "keys", tmp_path, ctx)
    finally:
        ctx.db.dispose()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def request_pids(log: str) -> set[int]:
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return {line["pid"] for line in lines if line.get("msg") == "request"}


def test_two_workers_take_concurrent_creates_and_transitions(deployment: Deployment) -> None:
    server = deployment.serve(workers=2)
    try:
        lpsk = deployment.token(server, "LPSK")
        kemensos = deployment.token(server, "KEMENSOS")

        def call(token: str, path: str, body: dict, if_match: str | None = None):  # type: ignore[no-untyped-def,type-arg]
            headers = {"Authorization": f"Bearer {token}"}
            if if_match:
                headers["If-Match"] = if_match
            # A new connection per request, so the kernel spreads them over the workers.
            with httpx.Client(base_url=server.base_url, timeout=60) as client:
                return client.post(path, json=body, headers=headers)

        def lifecycle(_: int) -> list[int]:
            created = call(lpsk, "/v1/referrals", referral_body("KEMENSOS"))
            codes = [created.status_code]
            if created.status_code != 201:
                return codes
            rid, etag = created.json()["id"], created.headers["ETag"]
            for action, body in (
                ("assess", assess_body()),
                ("serve", service_body()),
                ("close", {"outcome": "completed"}),
            ):
                answer = call(kemensos, f"/v1/referrals/{rid}/{action}", body, etag)
                codes.append(answer.status_code)
                if answer.status_code != 200:
                    break
                etag = answer.headers["ETag"]
            return codes

        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(lifecycle, range(24)))
        assert all(codes == [201, 200, 200, 200] for codes in results), results

        # Prometheus multiprocess mode: every scrape sums all workers, whichever answers.
        for _ in range(10):
            assert httpx.get(server.base_url + "/healthz", timeout=10).status_code == 200
            server.healthz_calls += 1
        scrapes = [samples(httpx.get(server.base_url + "/metrics", timeout=30).text)
                   for _ in range(6)]
        healthz = ("http_requests_total",
                   frozenset({"handler": "/healthz", "method": "GET", "status": "200"}.items()))
        assert {s[healthz] for s in scrapes} == {server.healthz_calls}
        creates = ("http_requests_total",
                   frozenset({"handler": "/v1/referrals", "method": "POST",
                              "status": "201"}.items()))
        assert {s[creates] for s in scrapes} == {24}
        completed = ("rujukan_referral_transitions_total",
                     frozenset({"action": "close", "outcome": "completed"}.items()))
        assert {s[completed] for s in scrapes} == {24}
    finally:
        code = server.terminate()
    log = server.log()
    assert code == 0, log
    assert "database is locked" not in log
    assert "Traceback" not in log
    assert len(request_pids(log)) == 2, "both workers should have answered requests"
    # Uvicorn's own lines are JSON too.
    assert not [line for line in log.splitlines() if line.startswith(("INFO:", "WARNING:"))]
    assert any('"logger": "uvicorn.error"' in line for line in log.splitlines())


def test_sigterm_lets_an_in_flight_create_finish_and_commit(deployment: Deployment) -> None:
    server = deployment.serve(workers=2)
    token = deployment.token(server, "LPSK")
    body = json.dumps(referral_body("KEMENSOS")).encode()
    host, port = server.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest("POST", "/v1/referrals")
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body[:40])
        time.sleep(0.5)  # the worker has the request line and headers: it is in flight
        server.process.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert server.process.poll() is None, "the server quit with a request in flight"
        conn.send(body[40:])
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 201, answer
    finally:
        conn.close()
    code = server.process.wait(timeout=60)
    assert code == 0, server.log()

    # The whole action is in the database: the row, its history, its audit entry.
    with deployment.ctx.db.reader() as session:
        row = session.get(Referral, uuid.UUID(answer["id"]))
        assert row is not None and row.status == "referred"
        history = session.execute(
            select(func.count()).select_from(ReferralHistory)
            .where(ReferralHistory.referral_id == row.id)  # type: ignore[arg-type]
        ).scalar_one()
        assert history == 1
        audited = session.execute(
            select(func.count()).select_from(AuditEntry)
            .where(AuditEntry.referral_id == row.id)  # type: ignore[arg-type]
            .where(AuditEntry.action == "referral.create")  # type: ignore[arg-type]
        ).scalar_one()
        assert audited == 1


def _dockerfile_env_and_cmd() -> tuple[dict[str, str], list[str]]:
    """The final stage's ENV values and its CMD, as Docker would run them."""
    env: dict[str, str] = {}
    cmd: list[str] = []
    for keyword, args in final_stage():
        if keyword == "ENV":
            for pair in args.split():
                name, _, value = pair.partition("=")
                env[name] = value
        elif keyword == "CMD":
            cmd = json.loads(args)
    return env, cmd


@pytest.fixture
def image_database(backend: str, new_database_url) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """An empty database for the image's command, as deployed: on PostgreSQL, the URLs of an
    owner role (for the migrations) and of the service's role."""
    if backend == "sqlite":
        yield {"RUJUKAN_DATABASE_URL": new_database_url(backend)}
        return
    with owner_and_service_roles(POSTGRES_URL or "") as roles:
        yield {
            "RUJUKAN_DATABASE_URL": roles.service_url,
            "RUJUKAN_MIGRATION_DATABASE_URL": roles.owner_url,
        }


def test_the_images_command_migrates_once_then_serves_workers_and_stops_cleanly(
    image_database: dict[str, str], tmp_path: Path
) -> None:
    image_env, cmd = _dockerfile_env_and_cmd()
    assert image_env["RUJUKAN_ENV"] == "prod"
    key_dir = tmp_path / "secrets"
    env = base_env(image_database["RUJUKAN_DATABASE_URL"], key_dir)
    port = free_port()
    env.update(
        {k: v for k, v in image_env.items() if k.startswith("RUJUKAN_")},
        **image_database,
        RUJUKAN_HOST="127.0.0.1",
        RUJUKAN_PORT=str(port),
        RUJUKAN_MIGRATIONS_DIR=str(REPO / "migrations"),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    # An operator provisions the prod keys once, as docs/deploying.md says.
    init = subprocess.run(
        [str(RUJUKAN), "keys", "init"], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert init.returncode == 0, init.stderr
    server = Server.start(cmd, env, tmp_path, port)
    try:
        ready = httpx.get(server.base_url + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text  # migrated to head
        # prod keeps /metrics closed until a scraper token is configured
        assert httpx.get(server.base_url + "/metrics", timeout=10).status_code == 403
    finally:
        code = server.terminate()
    log = server.log()
    assert code == 0, log
    assert "latest migration (" in log
    assert "Traceback" not in log
    # A second start finds nothing to migrate and serves again.
    server = Server.start(cmd, env, tmp_path, port)
    assert server.terminate() == 0, server.log()


def test_migrations_started_together_run_once(
    backend: str, new_database_url, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    url = new_database_url(backend)
    env = base_env(url, tmp_path / "keys")
    processes = [
        subprocess.Popen(
            [str(RUJUKAN), "migrate"], env=env, cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=180) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert "Traceback" not in out + err
    ctx = ServiceContext.build(make_settings(url, tmp_path / "keys"))
    try:
        from service.db import migration_state

        current, head = migration_state(ctx.db.engine)
        assert current == head
    finally:
        ctx.db.dispose()


def test_the_connection_pool_follows_the_settings(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        database_url, tmp_path / "keys", db_pool_size=3, db_max_overflow=2,
        db_pool_timeout_seconds=0.5,
    )
    ctx = ServiceContext.build(settings)
    try:
        pool = ctx.db.engine.pool
        if database_url.startswith("sqlite"):
            # The settings are PostgreSQL's: SQLite keeps a pool of its own size.
            assert settings.pool_options() == {}
            assert pool.size() == SQLITE_POOL_SIZE  # type: ignore[attr-defined]
            return
        assert pool.size() == 3  # type: ignore[attr-defined]
        assert pool._max_overflow == 2  # type: ignore[attr-defined]
        # Five connections at once (3 + 2 overflow); a sixth waits out the pool timeout.
        held = [ctx.db.engine.connect() for _ in range(5)]
        try:
            started = time.monotonic()
            with pytest.raises(sqlalchemy.exc.TimeoutError):
                ctx.db.engine.connect()
            assert time.monotonic() - started >= 0.5
        finally:
            for connection in held:
                connection.close()
        # ... and serves again once they are back.
        with ctx.db.reader() as session:
            assert session.execute(select(1)).scalar_one() == 1
    finally:
        ctx.db.dispose()


def test_a_worker_handles_at_most_worker_threads_requests_at_once(
    settings: Settings, lpsk: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests beyond RUJUKAN_WORKER_THREADS wait their turn and are all answered."""
    from service.referrals import queries

    running, most = 0, 0
    lock = threading.Lock()

    def slow_get(*args: object, **kwargs: object) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        raise errors.NotFound("No referral with this id is visible to your agency.")

    monkeypatch.setattr(queries, "get_referral", slow_get)
    ctx = ServiceContext.build(settings.model_copy(update={"worker_threads": 2}))
    try:
        with TestClient(create_app(ctx=ctx)) as http, ThreadPoolExecutor(6) as pool:
            calls = [
                pool.submit(http.get, f"/v1/referrals/{uuid.uuid4()}", headers=lpsk.headers())
                for _ in range(6)
            ]
            statuses = [call.result().status_code for call in calls]
    finally:
        ctx.db.dispose()
    assert statuses == [404] * 6
    assert most == 2


# ---- Request bodies that arrive slowly or all at once ----------------------------------------


def _app_with(ctx: ServiceContext, **settings: object):  # type: ignore[no-untyped-def]
    """The app on the same database and keys, with other settings."""
    changed = ctx.settings.model_copy(update=settings)
    return create_app(ctx=dataclasses.replace(ctx, settings=changed))


async def _post(
    app,  # type: ignore[no-untyped-def]
    token: str,
    chunks: list[bytes],
    *,
    length: int | None,
    stall: bool = False,
    gap: float = 0.0,
) -> tuple[int, dict[str, str], bytes]:
    """POST /v1/referrals at the ASGI level, the body in these chunks (with `gap` seconds
    between them); with `stall`, the client then sends nothing more and never hangs up."""
    headers = [
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
    ]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/referrals", "raw_path": b"/v1/referrals",
        "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }
    pending = [
        {"type": "http.request", "body": chunk, "more_body": stall or i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    never = anyio.Event()

    async def receive() -> dict[str, object]:
        if pending:
            if gap:
                await anyio.sleep(gap)
            return pending.pop(0)
        await never.wait()
        return {"type": "http.disconnect"}

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    with anyio.fail_after(5):  # far beyond any body timeout a test sets
        await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    answer_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}  # type: ignore[attr-defined]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")  # type: ignore[misc]
    return start["status"], answer_headers, body  # type: ignore[return-value]


def _json_of(size: int) -> bytes:
    """An empty JSON object padded to `size` bytes (a body that arrives whole and is refused
    by validation, 422, so reaching validation shows the body was taken)."""
    return b"{" + b" " * (size - 2) + b"}"


def test_a_body_that_stalls_gets_408_within_the_body_timeout(
    ctx: ServiceContext, lpsk: Api
) -> None:
    app = _app_with(ctx, body_timeout_seconds=0.3)
    started = time.monotonic()
    status, headers, body = anyio.run(
        lambda: _post(app, lpsk.token, [b"{" + b" " * 499], length=1000, stall=True)
    )
    assert status == 408
    assert headers["content-type"].startswith("application/problem+json")
    assert headers["connection"] == "close"
    assert "0.3 seconds" in json.loads(body)["detail"]
    assert time.monotonic() - started < 3
    # A body that keeps coming and ends in time is taken, however it is cut.
    status, _, _ = anyio.run(
        lambda: _post(app, lpsk.token, [_json_of(300)[:100], _json_of(300)[100:]],
                      length=300, gap=0.05)
    )
    assert status == 422


def test_bodies_held_at_once_stay_within_the_budget(ctx: ServiceContext, lpsk: Api) -> None:
    """While a stalled upload holds most of the budget, another body gets 503 with
    Retry-After before it is read; once the stalled one times out, its bytes are free again."""
    budget = 1024 * 1024
    app = _app_with(ctx, body_timeout_seconds=0.5, body_budget_bytes=budget)
    held = 1_000_000
    answers: dict[str, tuple[int, dict[str, str], bytes]] = {}

    async def scenario() -> None:
        async def stalled() -> None:
            answers["stalled"] = await _post(
                app, lpsk.token, [b"{" + b" " * 499_999], length=held, stall=True
            )

        async with anyio.create_task_group() as group:
            group.start_soon(stalled)
            await anyio.sleep(0.1)
            answers["declared"] = await _post(app, lpsk.token, [_json_of(100_000)], length=100_000)
            # Without Content-Length the bytes count as they arrive.
            answers["chunked"] = await _post(
                app, lpsk.token, [b"{" + b" " * 59_999, b" " * 59_999 + b"}"], length=None
            )
        answers["after"] = await _post(app, lpsk.token, [_json_of(100_000)], length=100_000)

    anyio.run(scenario)
    assert answers["stalled"][0] == 408
    for name in ("declared", "chunked"):
        status, headers, body = answers[name]
        assert status == 503, name
        assert headers["retry-after"] == "1"
        assert json.loads(body)["status"] == 503
    assert answers["after"][0] == 422


def test_a_real_server_answers_a_stalled_upload_with_408_and_hangs_up(
    ctx: ServiceContext, lpsk: Api
) -> None:
    """Through uvicorn on a socket: the client declares 1,048,000 bytes, sends 1,040,000 and
    stalls, as in the attack; the server answers 408 once the body timeout passes and closes
    the connection, so the memory is given back."""
    app = _app_with(ctx, body_timeout_seconds=0.5)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/referrals HTTP/1.1\r\nHost: rujukan\r\n"
                + f"Authorization: Bearer {lpsk.token}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 1048000\r\n\r\n"
                + b"{" + b" " * 1_039_999
            )
            started = time.monotonic()
            answer = b""
            while chunk := sock.recv(65536):  # b"" once the server hangs up
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"application/problem+json" in answer
        assert time.monotonic() - started < 5
    finally:
        server.should_exit = True
        thread.join(timeout=10)
