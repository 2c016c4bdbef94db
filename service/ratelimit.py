"""Limits against abuse (OWASP API4): requests per client; failed token requests per client id
and address, and per address.

The counting is the `limits` library's moving-window strategy: exact (no double burst at a
window edge), and it knows how much is left and when the next unit frees up, which is what
`Retry-After` and the RateLimit fields of draft-ietf-httpapi-ratelimit-headers-10 carry:

    RateLimit-Policy: "default";q=600;w=60      (600 requests per 60 seconds)
    RateLimit: "default";r=0;t=12               (0 left; more in 12 seconds)

Counters live in process memory, or in Redis when RUJUKAN_REDIS_URL is set, so that every
worker and host shares them. If Redis stops answering, each process goes on limiting in its own
memory and tries Redis again after REDIS_RETRY_SECONDS: neither a 500 on every request nor a
door left open.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from limits.util import WindowStats
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import errors
from service.config import Settings
from service.i18n import msg
from service.openapi_docs import problems

log = logging.getLogger("rujukan.ratelimit")

REQUEST_POLICY = "default"
TOKEN_FAILURE_POLICY = "token-failures"  # noqa: S105 - a policy name, not a secret
ADDRESS_FAILURE_POLICY = "token-address-failures"
REDIS_RETRY_SECONDS = 30.0
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_KEY_PREFIX = "rujukan-ratelimit"
# How often the in-memory counters drop expired entries (see `_MemoryCounters`).
MEMORY_SWEEP_SECONDS = 10.0
_STATE_KEY = "rujukan_quota"
_T = TypeVar("_T")
# A used-up policy: its name, its limit and where its window stands.
_UsedUp = tuple[str, RateLimitItem, WindowStats]


@dataclass(frozen=True)
class Quota:
    """One policy as it stands for one caller after a request."""

    policy: str
    limit: int
    window: int
    remaining: int
    reset: int
    allowed: bool

    def headers(self) -> dict[str, str]:
        """The RateLimit-Policy and RateLimit fields, and Retry-After when refused."""
        headers = {
            "RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset)
        return headers


def _key(*parts: str) -> str:
    # Hashed: one length, no separator ambiguity ("a/b"+"c" vs "a"+"b/c"), and neither
    # issuer nor client id readable in Redis.
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:40]


def _network(address: str) -> str:
    """The caller's address as counted: an IPv6 address by its /64, the least a host or a
    home line is given (a stranger with one /64 has 2**64 addresses, not one each)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class _MemoryCounters(MemoryStorage):
    """The `limits` in-process storage, dropping expired entries at most every
    MEMORY_SWEEP_SECONDS.

    The library sweeps every key 10 ms after each hit. Strangers sending made-up client ids
    from many addresses make a key each: with tens of thousands of keys, back-to-back sweeps
    would keep a core busy. Counting ignores expired entries anyway (the moving window looks
    at their times), so sweeping less often only holds their memory a little longer.
    """

    def __init__(self) -> None:
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()
        super().__init__()

    # The library's own scheduling hook (a private, name-mangled method), overridden so that
    # a hit starts a sweep only once the interval has passed.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            if now >= self._next_sweep and not self.timer.is_alive():
                self._next_sweep = now + MEMORY_SWEEP_SECONDS
                # Name-mangled in the library; mypy does not mangle, so it cannot see it.
                sweep = self._MemoryStorage__expire_events  # type: ignore[attr-defined]
                self.timer = threading.Timer(0, sweep)
                self.timer.daemon = True
                self.timer.start()
        finally:
            self._sweep_lock.release()


class RateLimits:
    """The service's policies, counted in Redis (with a memory fallback) or in memory."""

    def __init__(self, settings: Settings) -> None:
        self.requests: RateLimitItem = parse(settings.rate_limit)
        self.token_failures: RateLimitItem = parse(settings.token_failure_limit)
        self.address_failures: RateLimitItem = parse(settings.token_address_failure_limit)
        self._memory = MovingWindowRateLimiter(_MemoryCounters())
        self._shared: MovingWindowRateLimiter | None = None
        self._shared_down_until = 0.0
        if settings.redis_url is not None:
            storage = storage_from_string(
                settings.redis_url.get_secret_value(),
                key_prefix=REDIS_KEY_PREFIX,
                wrap_exceptions=True,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._shared = MovingWindowRateLimiter(storage)

    @property
    def shared(self) -> bool:
        """Whether the counters are kept in Redis."""
        return self._shared is not None

    def _run(self, operation: Callable[[MovingWindowRateLimiter], _T]) -> _T:
        shared = self._shared
        if shared is not None and time.monotonic() >= self._shared_down_until:
            try:
                return operation(shared)
            except StorageError as exc:
                self._shared_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                log.warning(
                    "rate-limit storage unreachable (%s); counting in process memory for %ds",
                    type(exc.storage_error).__name__,
                    REDIS_RETRY_SECONDS,
                )
        return operation(self._memory)

    @staticmethod
    def _quota(policy: str, item: RateLimitItem, stats: WindowStats, allowed: bool) -> Quota:
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Quota(
            policy=policy,
            limit=item.amount,
            window=item.get_expiry(),
            remaining=max(0, stats.remaining),
            reset=reset if allowed else max(1, reset),
            allowed=allowed,
        )

    def hit_request(self, issuer: str, subject: str) -> Quota:
        """Count one request of an authenticated client; `allowed` is False past its quota."""
        key = _key(issuer, subject)

        def hit(limiter: MovingWindowRateLimiter) -> tuple[bool, WindowStats]:
            allowed = limiter.hit(self.requests, "requests", key)
            return allowed, limiter.get_window_stats(self.requests, "requests", key)

        allowed, stats = self._run(hit)
        return self._quota(REQUEST_POLICY, self.requests, stats, allowed)

    def _token_failure_counters(
        self, client_id: str, address: str
    ) -> tuple[tuple[str, RateLimitItem, str], ...]:
        """The counters of failed token requests a request from `address` for `client_id`
        is held to: (policy, its limit, its key); the policy names the counter in storage."""
        network = _network(address)
        return (
            (ADDRESS_FAILURE_POLICY, self.address_failures, _key(network)),
            (TOKEN_FAILURE_POLICY, self.token_failures, _key(client_id, network)),
        )

    def token_lockout(self, client_id: str, address: str) -> Quota | None:
        """The used-up failure quota that refuses this client id from this address: the
        address's own (every client id) or that of the client id from this address; None
        while it may still try.

        Keyed by address as well, so that a stranger guessing one client's secret locks
        out only themself: the client keeps getting tokens from its own address.
        """
        policies = self._token_failure_counters(client_id, address)

        def check(limiter: MovingWindowRateLimiter) -> _UsedUp | None:
            for policy, item, key in policies:
                if not limiter.test(item, policy, key):
                    return policy, item, limiter.get_window_stats(item, policy, key)
            return None

        used_up = self._run(check)
        if used_up is None:
            return None
        policy, item, stats = used_up
        return self._quota(policy, item, stats, allowed=False)

    def record_token_failure(self, client_id: str, address: str) -> None:
        """Count one failed client authentication for this client id and this address."""
        policies = self._token_failure_counters(client_id, address)

        def hit(limiter: MovingWindowRateLimiter) -> None:
            for policy, item, key in policies:
                limiter.hit(item, policy, key)

        self._run(hit)


def rate_limits(request: Request) -> RateLimits:
    """The application's RateLimits."""
    limits: RateLimits = request.app.state.rate_limits
    return limits


def enforce_request_limit(request: Request, issuer: str, subject: str) -> None:
    """Count a request of an authenticated client; 429 once its quota is used up."""
    quota = rate_limits(request).hit_request(issuer, subject)
    setattr(request.state, _STATE_KEY, quota)
    if not quota.allowed:
        log.info("request quota used up by client %s", subject)
        raise quota_exceeded(quota)


def quota_exceeded(quota: Quota) -> errors.RateLimited:
    """The 429 for a client whose request quota is used up."""
    return errors.RateLimited(
        msg(
            "This client may make {limit} requests in {window} seconds; "
            "retry after {seconds} seconds.",
            limit=quota.limit,
            window=quota.window,
            seconds=quota.reset,
        ),
        policy=quota.policy,
        headers=quota.headers(),
    )


def example_quota(policy: str = REQUEST_POLICY) -> Quota:
    """A used-up quota, for the examples of the OpenAPI document."""
    return Quota(policy=policy, limit=600, window=60, remaining=0, reset=12, allowed=False)


class RateLimitHeaders:
    """Adds the caller's RateLimit fields to every response of a counted request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The dependency writes the quota into this dict through `request.state`.
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_quota(message: Message) -> None:
            if message["type"] == "http.response.start":
                quota = state.get(_STATE_KEY)
                if isinstance(quota, Quota):
                    headers = MutableHeaders(scope=message)
                    for name, value in quota.headers().items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_quota)


def install_rate_limits(app: FastAPI, settings: Settings) -> None:
    """Give the app its counters and the middleware that reports them."""
    app.state.rate_limits = RateLimits(settings)
    app.add_middleware(RateLimitHeaders)


_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_HEADERS: dict[str, dict[str, Any]] = {
    "RateLimit-Policy": {
        "description": "The quota policy (draft-ietf-httpapi-ratelimit-headers): "
        '`"default";q=600;w=60` allows q requests in any w seconds.',
        "schema": {"type": "string", "examples": ['"default";q=600;w=60']},
    },
    "RateLimit": {
        "description": 'What is left of the quota: `"default";r=42;t=18` means r more '
        "requests now, more quota in t seconds.",
        "schema": {"type": "string", "examples": ['"default";r=42;t=18']},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    },
}


def _ref(*names: str) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def document_rate_limits(spec: dict[str, Any]) -> dict[str, Any]:
    """Document 429 and the RateLimit fields on every rate-limited operation."""
    spec.setdefault("components", {}).setdefault("headers", {}).update(_HEADERS)
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if operation.get("operationId") == "issue_token":
                from service.auth.service import too_many_failures  # imports this module

                example: errors.DomainError = too_many_failures(
                    example_quota(TOKEN_FAILURE_POLICY)
                )
                description = (
                    "Too many failed client authentications from this address, for this "
                    "client_id or for any (`error` invalid_client), whatever the secret, until "
                    "Retry-After seconds have passed"
                )
            elif operation.get("security"):
                example = quota_exceeded(example_quota())
                description = problems(429)[429]["description"]
                for status, response in responses.items():
                    if status.startswith("2"):
                        response.setdefault("headers", {}).update(
                            _ref("RateLimit-Policy", "RateLimit")
                        )
            else:
                continue
            responses["429"] = {
                **problems(429, examples={429: example})[429],
                "description": description,
                "headers": _ref("Retry-After", "RateLimit-Policy", "RateLimit"),
            }
    return spec
