"""Prometheus metrics: HTTP figures per route template, domain figures read from the database.

Request counts, latencies and sizes are recorded by a small ASGI middleware under the names and
labels that prometheus-fastapi-instrumentator gives them (dashboards keep working); it reads the
route template the router has already chosen instead of matching every request again. With
several worker processes (`rujukan serve --workers N`) each worker writes them to files under
PROMETHEUS_MULTIPROC_DIR and a scrape sums every worker's files, so the answer is the same
whichever worker serves it. Domain figures (open referrals, overdue, transitions) are not
counted in memory at all: they are grouped queries run at scrape time, so they are right across
workers, hosts and restarts. Nothing is labelled by agency, raw path or query string.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Summary,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select
from sqlmodel import col
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import errors
from service.context import ServiceContext
from service.i18n import msg
from service.openapi_docs import problems
from service.referrals.workflow import ADD_NOTE, CLOSED, OPEN_STATUSES
from service.serving import MULTIPROC_ENV

log = logging.getLogger("rujukan.metrics")

router = APIRouter(tags=["operations"])


def _multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


# Counted where it happens (a process-wide counter; with several workers the scrape sums their
# files, as for the HTTP figures). Alert on any increase: the data key file lacks a key, or
# stored values were damaged; `rujukan check` names the rows.
SERVICE_REGISTRY = CollectorRegistry(auto_describe=True)
UNREADABLE_REFERRALS = Counter(
    "rujukan_referrals_unreadable",
    "Referrals answered as `unavailable` because their sealed data could not be opened",
    registry=SERVICE_REGISTRY,
)


class DomainCollector(Collector):
    """Referral figures from the database, computed at each scrape (cheap grouped queries)."""

    def __init__(self, ctx_of: Callable[[], ServiceContext | None]) -> None:
        # A callable giving the context: the app's context is set by its lifespan, after this
        # collector is made.
        self._ctx_of = ctx_of

    def collect(self) -> Iterator[Metric]:
        """Yield the domain metric families; a failed query shows as rujukan_domain_up 0."""
        from service.events.models import DELIVERY_STATUSES, WebhookAttempt, WebhookDelivery
        from service.referrals.models import Referral, ReferralHistory

        up = GaugeMetricFamily(
            "rujukan_domain_up", "1 when the domain figures below could be read from the database"
        )
        ctx = self._ctx_of()
        if ctx is None:
            up.add_metric([], 0)
            yield up
            return
        now = dt.datetime.now(dt.UTC)
        try:
            with ctx.db.reader() as session:
                referral_status = col(Referral.status)
                by_status: dict[str, int] = dict(
                    session.execute(
                        select(referral_status, func.count())
                        .where(referral_status != CLOSED)
                        .group_by(referral_status)
                    )
                    .tuples()
                    .all()
                )
                overdue = session.execute(
                    select(func.count())
                    .select_from(Referral)
                    .where(
                        referral_status != CLOSED,
                        col(Referral.due_at).is_not(None),
                        col(Referral.due_at) < now,
                    )
                ).scalar_one()
                history_action = col(ReferralHistory.action)
                actions = session.execute(
                    # A note changes no state: it is not a transition.
                    select(history_action, func.count())
                    .where(history_action != ADD_NOTE)
                    .group_by(history_action)
                ).all()
                delivery_status = col(WebhookDelivery.status)
                deliveries: dict[str, int] = dict(
                    session.execute(select(delivery_status, func.count()).group_by(delivery_status))
                    .tuples()
                    .all()
                )
                oldest_pending = session.execute(
                    select(func.min(col(WebhookDelivery.created_at))).where(
                        delivery_status == "pending"
                    )
                ).scalar_one()
                failed_attempts = session.execute(
                    select(func.count())
                    .select_from(WebhookAttempt)
                    .where(
                        or_(
                            col(WebhookAttempt.status_code).is_(None),
                            col(WebhookAttempt.status_code) < 200,
                            col(WebhookAttempt.status_code) >= 300,
                        )
                    )
                ).scalar_one()
        except Exception as exc:  # noqa: BLE001 - a scrape must answer; the cause goes to the log
            log.warning("domain metrics unavailable", extra={"error_type": type(exc).__name__})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        open_ = GaugeMetricFamily(
            "rujukan_referrals_open", "Open referrals by status, all agencies", labels=["status"]
        )
        for status in sorted(set(OPEN_STATUSES) | set(by_status)):
            open_.add_metric([status], by_status.get(status, 0))
        yield open_

        late = GaugeMetricFamily(
            "rujukan_referrals_overdue", "Open referrals past the due time of their current step"
        )
        late.add_metric([], overdue)
        yield late

        transitions = CounterMetricFamily(
            "rujukan_referral_transitions",
            "Successful actions on referrals since the database was created, by action and, "
            "for close, outcome",
            labels=["action", "outcome"],
        )
        totals: dict[tuple[str, str], int] = {}
        for action, count in actions:
            name, _, outcome = str(action).partition(":")
            totals[(name, outcome)] = totals.get((name, outcome), 0) + int(count)
        for (name, outcome), count in sorted(totals.items()):
            transitions.add_metric([name, outcome], count)
        yield transitions

        by_delivery = GaugeMetricFamily(
            "rujukan_webhook_deliveries",
            "Webhook deliveries in the outbox by status (pending, delivered, dead)",
            labels=["status"],
        )
        for status in sorted(set(DELIVERY_STATUSES) | set(deliveries)):
            by_delivery.add_metric([status], deliveries.get(status, 0))
        yield by_delivery

        lag = GaugeMetricFamily(
            "rujukan_outbox_lag_seconds",
            "Age of the oldest webhook delivery not yet made (0 when none is waiting)",
        )
        waited = (now - oldest_pending).total_seconds() if oldest_pending else 0.0
        lag.add_metric([], max(0.0, waited))
        yield lag

        failures = CounterMetricFamily(
            "rujukan_webhook_attempts_failed",
            "Webhook attempts that got no answer or a non-2xx answer",
        )
        failures.add_metric([], failed_attempts)
        yield failures


# Unmatched paths are counted under one "none" handler: a probe of random URLs cannot create
# new series, and no raw path (which could carry an id) becomes a label.
UNMATCHED = "none"
EXCLUDED_HANDLERS = frozenset({"/metrics"})
LATENCY_BUCKETS = (0.1, 0.5, 1.0)
LATENCY_HIGHR_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10,
    30, 60,
)  # fmt: skip


class HttpMetrics:
    """The request figures of one app, as prometheus-fastapi-instrumentator named them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ("method", "status", "handler"),
            registry=registry,
        )
        self.request_size = Summary(
            "http_request_size_bytes",
            "Content length of incoming requests by handler. Only value of header is "
            "respected. Otherwise ignored. No percentile calculated. ",
            ("handler",),
            registry=registry,
        )
        self.response_size = Summary(
            "http_response_size_bytes",
            "Content length of outgoing responses by handler. Only value of header is "
            "respected. Otherwise ignored. No percentile calculated. ",
            ("handler",),
            registry=registry,
        )
        self.latency_highr = Histogram(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels. Made for more accurate "
            "percentile calculations. ",
            buckets=LATENCY_HIGHR_BUCKETS,
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler. Made to be only used if aggregation "
            "by handler is important. ",
            ("method", "handler"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # Labelled children by label values: `labels()` validates its arguments on every
        # call, and the set of values is small (route templates, methods, status codes).
        self._children: dict[tuple[str, str, str], tuple[Any, Any, Any, Any]] = {}

    def observe(
        self,
        *,
        method: str,
        handler: str,
        status: str,
        seconds: float,
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        """Record one finished request."""
        key = (method, status, handler)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, status, handler),
                self.request_size.labels(handler),
                self.response_size.labels(handler),
                self.latency.labels(method, handler),
            )
            self._children[key] = children
        requests, request_size, response_size, latency = children
        requests.inc()
        request_size.observe(request_bytes)
        response_size.observe(response_bytes)
        self.latency_highr.observe(seconds)
        latency.observe(seconds)


def _content_length(headers: Any) -> int:
    for name, value in headers or ():
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def route_template(scope: Scope, path: str, root_path: str) -> str:
    """The template of the route that handled a request, or "none".

    The router records the route it chose in `scope["route"]`. The app's own top-level
    Starlette routes (the OpenAPI document, the mounted documentation assets) do not record
    it, so those few are matched here; a request refused before routing counts as "none".
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template
    app = scope.get("app")
    probe = {"type": "http", "path": path, "root_path": root_path, "method": scope["method"]}
    for candidate in getattr(app, "routes", ()):
        if isinstance(candidate, Route | Mount) and candidate.matches(probe)[0] != Match.NONE:
            return candidate.path
    return UNMATCHED


class RequestMetrics:
    """ASGI middleware: counts and times every request per route template."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Kept before the app runs: routing may rewrite them (mounts do).
        path, root_path = scope["path"], scope.get("root_path", "")
        status = 500
        response_bytes = 0

        async def send_counted(message: Message) -> None:
            nonlocal status, response_bytes
            if message["type"] == "http.response.start":
                status = message["status"]
                response_bytes = _content_length(message.get("headers"))
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            handler = route_template(scope, path, root_path)
            if handler not in EXCLUDED_HANDLERS:
                self.metrics.observe(
                    method=scope["method"],
                    handler=handler,
                    status=str(int(status)),
                    seconds=max(time.perf_counter() - started, 0.0),
                    request_bytes=_content_length(scope.get("headers")),
                    response_bytes=response_bytes,
                )


def install_metrics(app: FastAPI) -> None:
    """Count requests per route template and serve GET /metrics."""
    requests_registry = CollectorRegistry(auto_describe=True)
    app.add_middleware(RequestMetrics, metrics=HttpMetrics(requests_registry))
    app.state.metrics_registry = requests_registry
    app.state.domain_collector = DomainCollector(lambda: getattr(app.state, "ctx", None))
    app.include_router(router)


def _metrics_token(ctx: ServiceContext) -> bytes | None:
    path = ctx.settings.metrics_token_file
    if path is None:
        return None
    try:
        token = path.read_bytes().strip()
    except OSError as exc:
        raise errors.Forbidden(
            msg("Metrics are unavailable: the metrics token file cannot be read.")
        ) from exc
    return token or None


def _check_access(ctx: ServiceContext, authorization: str | None) -> None:
    expected = _metrics_token(ctx)
    if expected is None:
        if ctx.settings.is_dev:
            return
        raise errors.Forbidden(
            msg(
                "Metrics are off in prod until RUJUKAN_METRICS_TOKEN_FILE names the scraper's "
                "token."
            )
        )
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise errors.Unauthorized(msg("The metrics bearer token is missing or wrong."))


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Request counts and latency histograms per route template, and referral "
    "figures for the whole service (open by status, overdue, transitions by action and "
    "outcome), in the Prometheus text format. No agency labels and no personal data. Open in "
    "dev; with `RUJUKAN_METRICS_TOKEN_FILE` set it needs that token as a bearer token, and in "
    "prod it answers 403 until that is set.",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        **problems(401, 403),
    },
)
def metrics(request: Request) -> Response:
    """The current metrics in the Prometheus text format."""
    app = request.app
    _check_access(app.state.ctx, request.headers.get("authorization"))
    if _multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(app.state.metrics_registry) + generate_latest(SERVICE_REGISTRY)
    domain = CollectorRegistry(auto_describe=False)
    domain.register(app.state.domain_collector)
    return Response(text + generate_latest(domain), media_type=CONTENT_TYPE_LATEST)
