"""Prometheus metrics: HTTP figures per route template, domain figures read from the database.

Request counts and latencies come from prometheus-fastapi-instrumentator. With several worker
processes (`rujukan serve --workers N`) each worker writes them to files under
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
from collections.abc import Callable, Iterator

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from sqlalchemy import func, or_, select

from service import errors
from service.context import ServiceContext
from service.openapi_docs import problems
from service.serving import MULTIPROC_ENV

log = logging.getLogger("rujukan.metrics")

OPEN_STATUSES = ("referred", "assessed", "served")

router = APIRouter(tags=["operations"])


def _multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


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
                by_status = dict(
                    session.execute(
                        select(Referral.status, func.count())
                        .where(Referral.status != "closed")
                        .group_by(Referral.status)
                    ).all()
                )
                overdue = session.execute(
                    select(func.count())
                    .select_from(Referral)
                    .where(
                        Referral.status != "closed",
                        Referral.due_at.is_not(None),  # type: ignore[union-attr]
                        Referral.due_at < now,  # type: ignore[operator]
                    )
                ).scalar_one()
                actions = session.execute(
                    # A note changes no state: it is not a transition.
                    select(ReferralHistory.action, func.count())
                    .where(ReferralHistory.action != "add_note")
                    .group_by(ReferralHistory.action)
                ).all()
                deliveries = dict(
                    session.execute(
                        select(WebhookDelivery.status, func.count()).group_by(
                            WebhookDelivery.status
                        )
                    ).all()
                )
                oldest_pending = session.execute(
                    select(func.min(WebhookDelivery.created_at)).where(
                        WebhookDelivery.status == "pending"
                    )
                ).scalar_one()
                failed_attempts = session.execute(
                    select(func.count())
                    .select_from(WebhookAttempt)
                    .where(
                        or_(
                            WebhookAttempt.status_code.is_(None),  # type: ignore[union-attr]
                            WebhookAttempt.status_code < 200,  # type: ignore[operator]
                            WebhookAttempt.status_code >= 300,  # type: ignore[operator]
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


def install_metrics(app: FastAPI) -> None:
    """Count requests per route template and serve GET /metrics."""
    requests_registry = CollectorRegistry(auto_describe=True)
    Instrumentator(
        should_group_status_codes=False,
        # Unmatched paths are counted under one "none" handler: a probe of random URLs
        # cannot create new series, and no raw path (which could carry an id) becomes a label.
        should_group_untemplated=True,
        excluded_handlers=["^/metrics$"],
        registry=requests_registry,
    ).instrument(app)
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
            "Metrics are unavailable: the metrics token file cannot be read."
        ) from exc
    return token or None


def _check_access(ctx: ServiceContext, authorization: str | None) -> None:
    expected = _metrics_token(ctx)
    if expected is None:
        if ctx.settings.is_dev:
            return
        raise errors.Forbidden(
            "Metrics are off in prod until RUJUKAN_METRICS_TOKEN_FILE names the scraper's token."
        )
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise errors.Unauthorized("The metrics bearer token is missing or wrong.")


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
    else:
        registry = app.state.metrics_registry
    domain = CollectorRegistry(auto_describe=False)
    domain.register(app.state.domain_collector)
    return Response(
        generate_latest(registry) + generate_latest(domain), media_type=CONTENT_TYPE_LATEST
    )
