"""Limits against abuse (OWASP API4): requests per client and failed token requests per client id.

Each test serves its own app with small limits on the backend under test. The Redis test runs
where RUJUKAN_TEST_REDIS_URL is set (e.g. redis://127.0.0.1:6379/15).
"""

from __future__ import annotations

import base64
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from limits import parse
from limits.strategies import MovingWindowRateLimiter
from pydantic import ValidationError

from service import ratelimit
from service.app import create_app
from service.config import Settings
from service.context import ServiceContext
from tests.support import ALL_SCOPES, Party
from tests.support.databases import make_settings
from tests.support.live import live_server

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

REDIS_URL = os.environ.get("RUJUKAN_TEST_REDIS_URL")
# Counters in process memory (the default), and in Redis where a test server is configured.
STORAGES = [pytest.param(None, id="memory")] + (
    [pytest.param(REDIS_URL, id="redis")] if REDIS_URL else []
)
PROBLEM = "application/problem+json"
METHODS = {"get", "put", "post", "delete", "patch"}


@dataclass
class Served:
    """An app with its own limits, and the context it runs on."""

    http: TestClient
    ctx: ServiceContext

    def party(self, agency: str = "LPSK", scope: str = ALL_SCOPES) -> Party:
        return Party.register(self.ctx, self.http, agency, scope)

    def from_address(self, host: str) -> TestClient:
        """A client of the same app whose requests come from `host`."""
        return TestClient(self.http.app, client=(host, 40_000), raise_server_exceptions=False)


@pytest.fixture
def serve(settings: Settings) -> Iterator[Callable[..., Served]]:
    """Start apps on the current backend (and its keys) with the given limit settings."""
    key_dir = settings.signing_key_path.parent
    with ExitStack() as stack:

        def start(**limits: Any) -> Served:
            ctx = ServiceContext.build(make_settings(settings.database_url, key_dir, **limits))
            http = TestClient(create_app(ctx=ctx), raise_server_exceptions=False)
            return Served(stack.enter_context(http), ctx)

        yield start


def unique_address() -> str:
    """An IPv6 documentation address in a /64 no other test uses."""
    return f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::1"


def bearer(party: Party, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or party.token}"}


def token_request(http: TestClient, client_id: str, secret: str, how: str = "form") -> Response:
    if how == "basic":
        raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {raw}"},
        )
    return http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )


def assert_throttled(response: Response, policy: str, quota: int, window: int) -> dict[str, Any]:
    """A 429 problem with Retry-After and the draft-ietf-httpapi-ratelimit-headers fields."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= window
    assert response.headers["RateLimit-Policy"] == f'"{policy}";q={quota};w={window}'
    assert response.headers["RateLimit"] == f'"{policy}";r=0;t={retry_after}'
    body: dict[str, Any] = response.json()
    assert body["status"] == 429
    assert body["type"] == "urn:rujukan:problem:quota-exceeded"
    assert body["violated-policies"] == [policy]
    assert f"retry after {retry_after} seconds" in body["detail"]
    return body


# Requests per client


@pytest.mark.parametrize("storage", STORAGES)
def test_a_client_past_its_quota_gets_429_with_retry_after(
    serve: Callable[..., Served], storage: str | None
) -> None:
    app = serve(rate_limit="3/minute", redis_url=storage)
    lpsk = app.party("LPSK")
    for remaining in (2, 1, 0):
        response = app.http.get("/v1/agencies", headers=bearer(lpsk))
        assert response.status_code == 200, response.text
        assert response.headers["RateLimit-Policy"] == '"default";q=3;w=60'
        assert re.fullmatch(rf'"default";r={remaining};t=\d+', response.headers["RateLimit"])
        assert "Retry-After" not in response.headers
    assert_throttled(app.http.get("/v1/agencies", headers=bearer(lpsk)), "default", 3, 60)


def test_the_quota_belongs_to_the_client_not_to_a_token(serve: Callable[..., Served]) -> None:
    app = serve(rate_limit="2/minute")
    lpsk, kemensos = app.party("LPSK"), app.party("KEMENSOS")
    second_token = lpsk.token_for(app.http, "referrals:read")
    for _ in range(2):
        assert app.http.get("/v1/taxonomy", headers=bearer(lpsk)).status_code == 200
    assert_throttled(
        app.http.get("/v1/agencies", headers=bearer(lpsk, second_token)), "default", 2, 60
    )
    other = app.http.get("/v1/agencies", headers=bearer(kemensos))
    assert other.status_code == 200
    assert other.headers["RateLimit"].startswith('"default";r=1;')
    # Nobody else is throttled with the client: an anonymous call is still answered 401.
    anonymous = app.http.get("/v1/agencies")
    assert anonymous.status_code == 401
    assert "RateLimit" not in anonymous.headers


def test_every_authenticated_operation_counts_and_is_refused(
    serve: Callable[..., Served],
) -> None:
    app = serve(rate_limit="1/minute")
    party = app.party("KEMENSOS")
    spec = app.http.get("/openapi.json").json()
    operations = [
        (method, path)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS and op.get("security")
    ]
    assert len(operations) >= 12
    assert app.http.get("/v1/agencies", headers=bearer(party)).status_code == 200
    for method, path in operations:
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = app.http.request(method, url, headers=bearer(party), json={})
        assert response.status_code == 429, f"{method.upper()} {path}: {response.status_code}"
        assert "Retry-After" in response.headers


def test_the_quota_returns_as_the_window_moves(serve: Callable[..., Served]) -> None:
    app = serve(rate_limit="2/second")
    party = app.party("LPSK")
    for _ in range(2):
        assert app.http.get("/v1/agencies", headers=bearer(party)).status_code == 200
    refused = app.http.get("/v1/agencies", headers=bearer(party))
    assert_throttled(refused, "default", 2, 1)
    time.sleep(1.1)
    assert app.http.get("/v1/agencies", headers=bearer(party)).status_code == 200


@pytest.mark.parametrize("storage", STORAGES)
def test_concurrent_requests_over_real_sockets_get_exactly_the_quota(
    serve: Callable[..., Served], storage: str | None
) -> None:
    app = serve(rate_limit="20/minute", redis_url=storage)
    party = app.party("KEMENSOS")
    with live_server(app.ctx) as server, ThreadPoolExecutor(max_workers=16) as pool:

        def call(_: int) -> Response:
            with server.client(party.token) as client:
                return client.get("/v1/agencies")

        responses = list(pool.map(call, range(40)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 20 + [429] * 20
    assert all(r.headers["RateLimit-Policy"] == '"default";q=20;w=60' for r in responses)


def test_errors_after_authentication_carry_the_ratelimit_fields(
    serve: Callable[..., Served],
) -> None:
    app = serve(rate_limit="5/minute")
    party = app.party("LPSK")
    missing = app.http.get(f"/v1/referrals/{uuid.uuid4()}", headers=bearer(party))
    assert missing.status_code == 404
    assert missing.headers["RateLimit"].startswith('"default";r=4;')
    assert missing.headers["RateLimit-Policy"] == '"default";q=5;w=60'


# Failed token requests per client id


@pytest.mark.parametrize("how", ["form", "basic"])
def test_failed_token_requests_lock_the_client_id_even_for_the_right_secret(
    serve: Callable[..., Served], how: str
) -> None:
    app = serve(token_failure_limit="3/minute")
    party = app.party("KEMENSOS")
    for _ in range(3):
        assert token_request(app.http, party.client_id, "not-the-secret", how).status_code == 401
    locked = token_request(app.http, party.client_id, party.secret, how)
    body = assert_throttled(locked, "token-failures", 3, 60)
    assert body["error"] == "invalid_client"
    assert "access_token" not in locked.text
    # Other client ids are untouched.
    other = app.party("LPSK")
    assert token_request(app.http, other.client_id, other.secret, how).status_code == 200


def test_a_guesser_locks_out_only_its_own_address(serve: Callable[..., Served]) -> None:
    app = serve(token_failure_limit="3/minute")
    party = app.party("KEMENSOS")
    stranger, owner = app.from_address("203.0.113.9"), app.from_address("10.0.0.7")
    for _ in range(3):
        assert token_request(stranger, party.client_id, "a-guess").status_code == 401
    body = assert_throttled(
        token_request(stranger, party.client_id, party.secret), "token-failures", 3, 60
    )
    assert body["error"] == "invalid_client"
    # The client itself, from its own address, is not locked out by the stranger.
    for _ in range(3):
        assert token_request(owner, party.client_id, party.secret).status_code == 200


@pytest.mark.parametrize("storage", STORAGES)
def test_an_address_is_limited_across_client_ids(
    serve: Callable[..., Served], storage: str | None
) -> None:
    app = serve(token_address_failure_limit="4/minute", redis_url=storage)
    party = app.party("LPSK")
    # Addresses of their own: Redis keeps its counters from one run of the suite to the next.
    stranger, owner = app.from_address(unique_address()), app.from_address(unique_address())
    for _ in range(4):
        guessed = f"lpsk-{uuid.uuid4().hex[:16]}"
        assert token_request(stranger, guessed, "a-guess").status_code == 401
    # A fifth client id from the same address, even a real one with its secret: 429.
    for client_id, secret in ((f"lpsk-{uuid.uuid4().hex[:16]}", "a-guess"),
                              (party.client_id, party.secret)):  # fmt: skip
        body = assert_throttled(
            token_request(stranger, client_id, secret), "token-address-failures", 4, 60
        )
        assert body["error"] == "invalid_client"
        assert "access_token" not in body
    assert token_request(owner, party.client_id, party.secret).status_code == 200


def test_an_ipv6_address_counts_as_its_64(serve: Callable[..., Served]) -> None:
    """A stranger with a /64 has 2**64 addresses; they count as one."""
    app = serve(token_address_failure_limit="3/minute")
    prefix = unique_address().removesuffix("::1")
    for host in range(3):
        guessed = f"lpsk-{uuid.uuid4().hex[:16]}"
        neighbour = app.from_address(f"{prefix}:{host}:{host}:{host}:{host + 1}")
        assert token_request(neighbour, guessed, "a-guess").status_code == 401
    assert_throttled(
        token_request(app.from_address(f"{prefix}::abcd"), "lpsk-0", "a-guess"),
        "token-address-failures",
        3,
        60,
    )
    party = app.party("LPSK")
    elsewhere = app.from_address(unique_address())
    assert token_request(elsewhere, party.client_id, party.secret).status_code == 200


def test_memory_counters_are_swept_at_most_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each made-up client id is a key; sweeping them all after every hit (the library's
    default) would keep a core busy under a stranger's flood. Counting stays exact."""
    monkeypatch.setattr(ratelimit, "MEMORY_SWEEP_SECONDS", 60.0)
    storage = ratelimit._MemoryCounters()
    sweeps: list[float] = []
    sweep = storage._MemoryStorage__expire_events  # type: ignore[attr-defined]
    monkeypatch.setattr(
        storage, "_MemoryStorage__expire_events", lambda: sweeps.append(time.monotonic()) or sweep()
    )
    limiter = MovingWindowRateLimiter(storage)
    item = parse("2/second")
    for n in range(300):
        limiter.hit(item, "token-failures", f"made-up-{n}")
        if n % 50 == 0:
            time.sleep(0.02)  # the library would sweep 10 ms after each of these
    assert len(sweeps) <= 1
    assert limiter.hit(item, "token-failures", "made-up-1")
    assert not limiter.hit(item, "token-failures", "made-up-1")


def test_unknown_client_ids_are_locked_the_same_way(serve: Callable[..., Served]) -> None:
    app = serve(token_failure_limit="2/minute")
    known = app.party("LPSK")
    unknown = f"lpsk-{uuid.uuid4().hex[:16]}"
    answers = {}
    for client_id in (known.client_id, unknown):
        for _ in range(2):
            assert token_request(app.http, client_id, "guess").status_code == 401
        answers[client_id] = token_request(app.http, client_id, "guess")
    bodies = [assert_throttled(r, "token-failures", 2, 60) for r in answers.values()]
    assert bodies[0].keys() == bodies[1].keys()
    assert {b["error"] for b in bodies} == {"invalid_client"}
    assert {b["title"] for b in bodies} == {bodies[0]["title"]}


def test_successful_token_requests_do_not_count(serve: Callable[..., Served]) -> None:
    app = serve(token_failure_limit="3/minute")
    party = app.party("KEMENHAM")
    for _ in range(6):
        assert token_request(app.http, party.client_id, party.secret).status_code == 200
    for _ in range(3):
        assert token_request(app.http, party.client_id, "wrong").status_code == 401
    assert token_request(app.http, party.client_id, party.secret).status_code == 429


def test_the_lock_lifts_when_the_window_passes(serve: Callable[..., Served]) -> None:
    app = serve(token_failure_limit="2/second")
    party = app.party("LPSK")
    for _ in range(2):
        assert token_request(app.http, party.client_id, "wrong").status_code == 401
    assert token_request(app.http, party.client_id, party.secret).status_code == 429
    time.sleep(1.1)
    assert token_request(app.http, party.client_id, party.secret).status_code == 200


# Where the counters live


def test_memory_counters_belong_to_one_process(serve: Callable[..., Served]) -> None:
    one, two = serve(rate_limit="1/minute"), serve(rate_limit="1/minute")
    party = one.party("LPSK")
    assert one.http.get("/v1/agencies", headers=bearer(party)).status_code == 200
    assert one.http.get("/v1/agencies", headers=bearer(party)).status_code == 429
    assert two.http.get("/v1/agencies", headers=bearer(party)).status_code == 200


@pytest.mark.skipif(not REDIS_URL, reason="set RUJUKAN_TEST_REDIS_URL to test the Redis storage")
def test_redis_counters_are_shared_by_every_process(serve: Callable[..., Served]) -> None:
    limits = {"rate_limit": "3/minute", "token_failure_limit": "2/minute", "redis_url": REDIS_URL}
    one, two = serve(**limits), serve(**limits)
    party = one.party("LPSK")
    assert one.http.get("/v1/agencies", headers=bearer(party)).status_code == 200
    assert two.http.get("/v1/agencies", headers=bearer(party)).status_code == 200
    last = one.http.get("/v1/agencies", headers=bearer(party))
    assert last.status_code == 200
    assert last.headers["RateLimit"].startswith('"default";r=0;')
    assert_throttled(two.http.get("/v1/agencies", headers=bearer(party)), "default", 3, 60)

    other = two.party("KEMENSOS")
    assert token_request(one.http, other.client_id, "wrong").status_code == 401
    assert token_request(two.http, other.client_id, "wrong").status_code == 401
    assert_throttled(
        token_request(one.http, other.client_id, other.secret), "token-failures", 2, 60
    )


def test_an_unreachable_redis_leaves_each_process_limiting_in_memory(
    serve: Callable[..., Served],
) -> None:
    # Port 1 on loopback: nothing listens there, so every Redis call fails at once.
    app = serve(rate_limit="2/minute", redis_url="redis://127.0.0.1:1/0")
    party = app.party("LPSK")
    for _ in range(2):
        assert app.http.get("/v1/agencies", headers=bearer(party)).status_code == 200
    assert_throttled(app.http.get("/v1/agencies", headers=bearer(party)), "default", 2, 60)


# Settings and documentation


@pytest.mark.parametrize(
    "field, value",
    [
        ("rate_limit", "lots"),
        ("rate_limit", "0/minute"),
        ("token_failure_limit", "ten"),
        ("token_address_failure_limit", "thirty"),
    ],
)
def test_a_malformed_limit_is_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(env="dev", **{field: value})


def test_a_bad_redis_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(env="dev", redis_url="http://rate:s3cr3t-pw@cache.internal:6379")
    assert "s3cr3t-pw" not in str(caught.value)


def test_the_production_defaults_are_documented_values() -> None:
    defaults = Settings(env="dev")
    assert defaults.rate_limit == "600/minute"
    assert defaults.token_failure_limit == "10/5minutes"
    assert defaults.token_address_failure_limit == "30/5minutes"
    assert defaults.redis_url is None


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(env="dev")).openapi()


def test_every_limited_operation_documents_429_as_a_problem(spec: dict[str, Any]) -> None:
    headers = spec["components"]["headers"]
    assert {"RateLimit", "RateLimit-Policy", "Retry-After"} <= set(headers)
    limited = [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS and (op.get("security") or path == "/oauth/token")
    ]
    assert len(limited) >= 13
    for path, method, op in limited:
        response = op["responses"].get("429")
        where = f"{method.upper()} {path}"
        assert response is not None, where
        schema = response["content"]["application/problem+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Problem"}, where
        assert set(response["headers"]) == {"Retry-After", "RateLimit", "RateLimit-Policy"}
        if path != "/oauth/token":
            for status, ok in op["responses"].items():
                if status.startswith("2"):
                    assert {"RateLimit", "RateLimit-Policy"} <= set(ok.get("headers", {})), where
