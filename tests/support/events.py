"""Shared by the event and webhook tests: reading the feed and walking a referral."""

from __future__ import annotations

from typing import Any

from tests.support import Api, assess_body, ok, service_body


def feed(api: Api, after: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """One page of the caller's event feed."""
    params: dict[str, Any] = {}
    if after is not None:
        params["after"] = after
    if limit is not None:
        params["limit"] = limit
    return ok(api.http.get("/v1/events", params=params, headers=api.headers()))  # type: ignore[no-any-return]


def all_events(api: Api, after: str | None = None) -> list[dict[str, Any]]:
    """Every event of the caller's feed after the cursor, following next_cursor."""
    items: list[dict[str, Any]] = []
    while True:
        page = feed(api, after, limit=50)
        items += page["items"]
        after = page["next_cursor"]
        if not page["has_more"]:
            return items


def walk(lpsk: Api, kemensos: Api, **overrides: Any) -> str:
    """An LPSK -> KEMENSOS referral taken through assess, serve, a further service and a
    note; returns its id."""
    rid = lpsk.create_ok("KEMENSOS", **overrides)["id"]
    ok(kemensos.act(rid, "assess", assess_body()))
    ok(kemensos.act(rid, "serve", service_body()))
    ok(kemensos.act(rid, "services", service_body()))
    ok(
        lpsk.http.post(f"/v1/referrals/{rid}/notes", json={"text": "Call first."},
                       headers=lpsk.headers()),
        201,
    )
    return rid
