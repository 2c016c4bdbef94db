"""GET /metrics: request figures per route template and referral figures from the database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from service.app import create_app
from service.context import ServiceContext
from service.referrals.models import Referral
from tests.support import (
    Api,
    assert_problem,
    assess_body,
    referral_body,
    service_body,
    writer_session,
)


def scrape(http: TestClient, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of GET /metrics, keyed by (name, labels)."""
    response = http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_per_route_template_with_latency(
    lpsk: Api, kemensos: Api, http: TestClient
) -> None:
    before = scrape(http)
    created = lpsk.create_ok("KEMENSOS")
    assert kemensos.act(created["id"], "assess", assess_body()).status_code == 200
    after = scrape(http)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(
        "http_requests_total", handler="/v1/referrals", method="POST", status="201"
    ) == 1
    assess = "/v1/referrals/{referral_id}/assess"
    assert delta("http_requests_total", handler=assess, method="POST", status="200") == 1
    # A latency histogram per route: its count moved by the one request.
    assert delta("http_request_duration_seconds_count", handler=assess, method="POST") == 1
    assert delta(
        "http_request_duration_seconds_bucket", handler=assess, method="POST", le="+Inf"
    ) == 1


def test_no_raw_path_id_or_query_reaches_a_label(lpsk: Api, http: TestClient) -> None:
    created = lpsk.create_ok("KEMENSOS")
    nik = referral_body()["subject"]["nik"]
    assert lpsk.get(created["id"]).status_code == 200
    assert lpsk.list(nik=nik).status_code == 200
    stranger = uuid.uuid4().hex
    assert http.get(f"/no/such/{stranger}").status_code == 404

    body = http.get("/metrics").text
    assert created["id"] not in body
    assert nik not in body
    assert stranger not in body
    assert 'handler="/v1/referrals/{referral_id}"' in body
    # Unknown paths share one series, so random URLs cannot grow the label set.
    assert 'handler="none"' in body


def test_sizes_and_the_fine_latency_histogram_are_recorded(
    lpsk: Api, http: TestClient
) -> None:
    created = lpsk.create_ok("KEMENSOS")
    before = scrape(http)
    answer = lpsk.get(created["id"])
    assert answer.status_code == 200
    after = scrape(http)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    one = "/v1/referrals/{referral_id}"
    assert delta("http_response_size_bytes_count", handler=one) == 1
    assert delta("http_response_size_bytes_sum", handler=one) == len(answer.content)
    assert delta("http_request_size_bytes_count", handler=one) == 1
    # The fine histogram has no labels: it moved by the one read and the scrape before it
    # does not count.
    assert delta("http_request_duration_highr_seconds_count") == 1
    assert delta("http_request_duration_highr_seconds_bucket", le="60.0") == 1


def test_scrapes_are_not_counted_and_docs_count_under_their_path(http: TestClient) -> None:
    before = scrape(http)
    assert http.get("/openapi.json").status_code == 200
    assert http.get("/docs-assets/no-such-asset.js").status_code == 404
    after = scrape(http)
    assert not [key for key in after if ("handler", "/metrics") in key[1]]

    def delta(handler: str, status: str) -> float:
        labels = {"handler": handler, "method": "GET", "status": status}
        return value(after, "http_requests_total", **labels) - value(
            before, "http_requests_total", **labels
        )

    assert delta("/openapi.json", "200") == 1
    assert delta("/docs-assets", "404") == 1


def test_domain_figures_come_from_the_database(
    lpsk: Api, kemensos: Api, http: TestClient, ctx: ServiceContext
) -> None:
    first = lpsk.create_ok("KEMENSOS")
    second = lpsk.create_ok("KEMENSOS")
    third = lpsk.create_ok("KEMENSOS")
    lpsk.create_ok("KEMENSOS")
    assert kemensos.act(first["id"], "assess", assess_body()).status_code == 200
    assert kemensos.act(first["id"], "serve", service_body()).status_code == 200
    assert kemensos.act(first["id"], "close", {"outcome": "completed"}).status_code == 200
    assert kemensos.act(second["id"], "assess", assess_body()).status_code == 200
    declined = {"outcome": "declined", "reason": "OUTSIDE_MANDATE"}
    closing = kemensos.act(third["id"], "close", declined)
    assert closing.status_code == 200, closing.text
    noted = http.post(
        f"/v1/referrals/{second['id']}/notes", json={"text": "Call first."},
        headers=lpsk.headers(),
    )
    assert noted.status_code == 201
    # One open referral is late: its due time has passed.
    with writer_session(ctx.db) as session:
        session.execute(
            update(Referral)
            .where(Referral.id == uuid.UUID(second["id"]))  # type: ignore[arg-type]
            .values(due_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        )
        session.commit()

    samples = scrape(http)
    assert value(samples, "rujukan_domain_up") == 1
    assert value(samples, "rujukan_referrals_open", status="referred") == 1
    assert value(samples, "rujukan_referrals_open", status="assessed") == 1
    assert value(samples, "rujukan_referrals_open", status="served") == 0
    assert value(samples, "rujukan_referrals_overdue") == 1
    transitions = "rujukan_referral_transitions_total"
    assert value(samples, transitions, action="create", outcome="") == 4
    assert value(samples, transitions, action="assess", outcome="") == 2
    assert value(samples, transitions, action="serve", outcome="") == 1
    assert value(samples, transitions, action="close", outcome="completed") == 1
    assert value(samples, transitions, action="close", outcome="declined") == 1
    assert not [key for key in samples if key[0] == transitions and
                ("action", "add_note") in key[1]]
    # Nothing about which agencies the referrals are between.
    text_body = http.get("/metrics").text
    for code in ("KEMENSOS", "LPSK", "KEMENHAM"):
        assert code not in text_body


def _app_with(ctx: ServiceContext, **settings: object) -> TestClient:
    changed = dataclasses.replace(ctx, settings=ctx.settings.model_copy(update=settings))
    return TestClient(create_app(ctx=changed), raise_server_exceptions=False)


def test_a_metrics_token_file_makes_the_scraper_authenticate(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    token_file = tmp_path / "metrics-token"
    token_file.write_text("scraper-secret-1\n")
    with _app_with(ctx, metrics_token_file=token_file) as http:
        assert_problem(http.get("/metrics"), 401)
        assert_problem(http.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401)
        allowed = http.get("/metrics", headers={"Authorization": "Bearer scraper-secret-1"})
        assert allowed.status_code == 200
        assert "rujukan_referrals_open" in allowed.text


def test_prod_keeps_metrics_closed_without_a_token_file(ctx: ServiceContext) -> None:
    with _app_with(ctx, env="prod") as http:
        problem = assert_problem(http.get("/metrics"), 403)
        assert "RUJUKAN_METRICS_TOKEN_FILE" in problem["detail"]


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_probes_and_metrics_need_no_agency_token_in_dev(http: TestClient, path: str) -> None:
    assert http.get(path).status_code == 200


def test_outbox_lag_and_webhook_failures(
    lpsk: Api, http: TestClient, ctx: ServiceContext
) -> None:
    from service.events.models import Event, WebhookAttempt, WebhookDelivery, WebhookSubscription

    lpsk.create_ok("KEMENSOS")
    now = dt.datetime.now(dt.UTC)
    later = now + dt.timedelta(days=1)  # never due during the test
    with writer_session(ctx.db) as session:
        event = session.execute(select(Event).limit(1)).scalar_one()
        sub = WebhookSubscription(
            agency="LPSK", url="https://hooks.example/rujukan", event_types=[],
            secret_sealed="sealed", created_by_client="metrics-test",
        )
        session.add(sub)
        session.flush()

        def delivery(status: str, age_seconds: int) -> WebhookDelivery:
            row = WebhookDelivery(
                subscription_id=sub.id, event_seq=event.seq, status=status,
                next_attempt_at=later, created_at=now - dt.timedelta(seconds=age_seconds),
            )
            session.add(row)
            return row

        oldest = delivery("pending", 120)
        delivery("pending", 30)
        done = delivery("delivered", 600)
        delivery("dead", 900)
        session.flush()
        for number, (target, code, error) in enumerate(
            [(oldest, 500, None), (oldest, None, "timeout"), (done, 204, None)], start=1
        ):
            session.add(WebhookAttempt(
                delivery_id=target.id, number=number, started_at=now, duration_ms=5,
                status_code=code, error=error, worker="w1",
            ))
        session.commit()

    samples = scrape(http)
    assert value(samples, "rujukan_webhook_deliveries", status="pending") == 2
    assert value(samples, "rujukan_webhook_deliveries", status="delivered") == 1
    assert value(samples, "rujukan_webhook_deliveries", status="dead") == 1
    assert 120 <= value(samples, "rujukan_outbox_lag_seconds") < 300
    assert value(samples, "rujukan_webhook_attempts_failed_total") == 2
    assert "hooks.example" not in http.get("/metrics").text


def test_an_empty_outbox_has_no_lag(lpsk: Api, http: TestClient) -> None:
    lpsk.create_ok("KEMENSOS")
    samples = scrape(http)
    assert value(samples, "rujukan_outbox_lag_seconds") == 0
    assert value(samples, "rujukan_webhook_deliveries", status="pending") == 0


def test_an_unreachable_database_gives_domain_up_zero_not_an_error(ctx: ServiceContext) -> None:
    from service.db import Database
    from service.metrics import DomainCollector

    broken = dataclasses.replace(ctx, db=Database("postgresql+psycopg://x@127.0.0.1:1/x"))
    try:
        families = {f.name: f for f in DomainCollector(lambda: broken).collect()}
    finally:
        broken.db.dispose()
    assert set(families) == {"rujukan_domain_up"}
    assert families["rujukan_domain_up"].samples[0].value == 0
    working = {f.name: f for f in DomainCollector(lambda: ctx).collect()}
    assert working["rujukan_domain_up"].samples[0].value == 1
