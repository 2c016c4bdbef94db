"""`rujukan worker`: the production dispatcher, run for real in a subprocess."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from service.app import create_app
from service.context import ServiceContext
from tests.support import ok, referral_body
from tests.support.cli import Cli, make_cli
from tests.support.databases import make_settings
from tests.support.receiver import Receiver


def test_rujukan_worker_delivers_what_the_api_committed(
    backend: str, new_database_url, tmp_path: Path, receiver: Receiver  # type: ignore[no-untyped-def]
) -> None:
    cli = make_cli(backend, new_database_url, tmp_path)
    cli.ok("migrate")
    client = cli.create_client("referrals:write webhooks:manage")
    ctx = ServiceContext.build(make_settings(cli.url, cli.key_dir))
    try:
        with TestClient(create_app(ctx=ctx), raise_server_exceptions=False) as http:
            token = ok(http.post("/oauth/token", data={
                "grant_type": "client_credentials", "client_id": client["client_id"],
                "client_secret": client["client_secret"],
            }))["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            sub = ok(http.post("/v1/webhook-subscriptions", headers=headers, json={
                "url": receiver.url, "event_types": ["referral.created"],
            }), 201)
            created = ok(http.post("/v1/referrals", json=referral_body("KEMENSOS"),
                                   headers=headers), 201)
    finally:
        ctx.db.dispose()
    assert receiver.requests == []  # the API process itself sends nothing here
    worker = dataclasses.replace(cli, process=True)
    worker.ok("worker", "--once")
    (request,) = receiver.wait_for(1)
    payload = Webhook(sub["secret"]).verify(request.body, request.headers)
    assert payload["data"]["referral_id"] == created["id"]
    # Once delivered, another pass sends nothing.
    worker.ok("worker", "--once")
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("args", [["worker", "--help"]])
def test_worker_help_touches_nothing(args: list[str], tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'never.db'}", tmp_path / "keys", tmp_path)
    result = cli.run(*args)
    assert result.returncode == 0 and "Usage" in result.stdout
    assert not (tmp_path / "never.db").exists()
