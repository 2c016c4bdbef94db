"""POST/GET/DELETE /v1/webhook-subscriptions: ownership, secrets, URL rules (SSRF guard)."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.context import ServiceContext
from service.events import urlguard
from service.events.models import WebhookSubscription
from tests.support import Api, assert_problem, ok
from tests.support.events import EMBEDDED_IPV4_FORMS, subscribe, variant

PATH = "/v1/webhook-subscriptions"


def test_the_secret_is_shown_once_and_stored_sealed(ctx: ServiceContext, lpsk: Api) -> None:
    created = subscribe(lpsk, "https://hooks.example.org/rujukan", ["referral.closed"])
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert created["event_types"] == ["referral.closed"] and created["active"] is True

    listed = ok(lpsk.http.get(PATH, headers=lpsk.headers()))
    assert [s["id"] for s in listed] == [created["id"]]
    assert "secret" not in listed[0]
    one = ok(lpsk.http.get(f"{PATH}/{created['id']}", headers=lpsk.headers()))
    assert "secret" not in one and one["url"] == "https://hooks.example.org/rujukan"

    with ctx.db.reader() as session:
        row = session.execute(select(WebhookSubscription)).scalars().one()
    assert secret not in row.secret_sealed
    assert secret.removeprefix("whsec_") not in row.secret_sealed
    assert ctx.keyring.open(row.secret_sealed, f"webhook:{row.id}:secret") == secret

    second = subscribe(lpsk, "https://hooks.example.org/other")
    assert second["secret"] != secret


def test_a_subscription_belongs_to_its_agency_only(lpsk: Api, kemensos: Api) -> None:
    created = subscribe(lpsk, "https://hooks.example.org/rujukan")
    sid = created["id"]
    assert ok(kemensos.http.get(PATH, headers=kemensos.headers())) == []
    for response in (
        kemensos.http.get(f"{PATH}/{sid}", headers=kemensos.headers()),
        kemensos.http.delete(f"{PATH}/{sid}", headers=kemensos.headers()),
        kemensos.http.get(f"{PATH}/{sid}/deliveries", headers=kemensos.headers()),
        kemensos.http.post(f"{PATH}/{sid}/rotate-secret", headers=kemensos.headers()),
    ):
        assert_problem(response, 404)
    assert lpsk.http.delete(f"{PATH}/{sid}", headers=lpsk.headers()).status_code == 204
    assert_problem(lpsk.http.get(f"{PATH}/{sid}", headers=lpsk.headers()), 404)


def test_managing_subscriptions_needs_the_webhooks_scope(lpsk: Api) -> None:
    assert_problem(lpsk.http.get(PATH), 401)
    reader = lpsk.with_scope("referrals:read referrals:write")
    assert_problem(reader.http.get(PATH, headers=reader.headers()), 403)
    body = {"url": "https://hooks.example.org/x", "event_types": ["referral.created"]}
    assert_problem(reader.http.post(PATH, json=body, headers=reader.headers()), 403)


def test_bad_bodies_are_refused(lpsk: Api) -> None:
    for body in (
        {"url": "https://hooks.example.org/x", "event_types": []},
        {"url": "https://hooks.example.org/x", "event_types": ["referral.exploded"]},
        {"url": "ftp://hooks.example.org/x", "event_types": ["referral.created"]},
        {"url": "https://user:pw@hooks.example.org/x", "event_types": ["referral.created"]},
        {"url": "not a url", "event_types": ["referral.created"]},
    ):
        assert_problem(lpsk.http.post(PATH, json=body, headers=lpsk.headers()), 422)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost:8080/hook",  # a name that resolves to loopback
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_non_public_addresses_are_refused_unless_allowed(
    ctx: ServiceContext, parties, url: str  # type: ignore[no-untyped-def]
) -> None:
    strict = variant(ctx, webhook_allow_private=False)
    with TestClient(create_app(ctx=strict), raise_server_exceptions=False) as http:
        party = parties["LPSK"]
        headers = {"Authorization": f"Bearer {party.token}"}
        body = {"url": url, "event_types": ["referral.created"]}
        problem = assert_problem(http.post(PATH, json=body, headers=headers), 422)
        assert problem["errors"][0]["loc"] == ["body", "url"]
    with pytest.raises(urlguard.UrlRefused):
        urlguard.target(url, https_only=False, allow_private=False)
    # The dev default allows them, for receivers on the developer's own machine.
    assert urlguard.target(url, https_only=False, allow_private=True).port > 0


@pytest.mark.parametrize("address", EMBEDDED_IPV4_FORMS)
def test_ipv6_forms_carrying_a_non_public_ipv4_address_are_refused(
    ctx: ServiceContext, parties, address: str  # type: ignore[no-untyped-def]
) -> None:
    """NAT64, 6to4, Teredo, IPv4-compatible, -mapped and -translated addresses lead to the
    IPv4 address inside them: judged by it, not by the IPv6 prefix."""
    url = f"https://[{address}]/hook"
    strict = variant(ctx, webhook_allow_private=False)
    with TestClient(create_app(ctx=strict), raise_server_exceptions=False) as http:
        headers = {"Authorization": f"Bearer {parties['LPSK'].token}"}
        body = {"url": url, "event_types": ["referral.created"]}
        problem = assert_problem(http.post(PATH, json=body, headers=headers), 422)
        assert problem["errors"][0]["loc"] == ["body", "url"]
    with pytest.raises(urlguard.UrlRefused, match="non-public"):
        urlguard.target(url, https_only=True, allow_private=False)


@pytest.mark.parametrize("address", ["64:ff9b::5db8:d822", "2002:5db8:d822::1"])
def test_nat64_and_6to4_forms_of_a_public_ipv4_address_are_taken(address: str) -> None:
    target = urlguard.target(f"https://[{address}]/hook", https_only=True, allow_private=False)
    assert str(target.address) == address


def test_production_takes_https_only() -> None:
    with pytest.raises(urlguard.UrlRefused, match="https"):
        urlguard.target("http://93.184.216.34/hook", https_only=True, allow_private=False)
    target = urlguard.target("https://93.184.216.34/hook", https_only=True, allow_private=False)
    assert (target.scheme, target.port, str(target.address)) == ("https", 443, "93.184.216.34")


def test_a_name_resolving_to_any_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(urlguard, "resolve", lambda host, port: ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(urlguard.UrlRefused):
        urlguard.target("https://mixed.example.org/", https_only=True, allow_private=False)
    monkeypatch.setattr(urlguard, "resolve", lambda host, port: ["93.184.216.34"])
    target = urlguard.target("https://ok.example.org:8443/x?y=1", https_only=True,
                             allow_private=False)
    assert target.connect_url == "https://93.184.216.34:8443/x?y=1"
    assert target.host_header == "ok.example.org:8443"
