"""A second open referral of one person to one receiver (CONTRACT §4): 409 naming the first
only when the sender is a party to it; from another sender the create succeeds, and only
the receiver sees `possible_duplicate_of`."""

from __future__ import annotations

import copy
import datetime as dt
import threading
from typing import Any

import pytest
from httpx import Response

from service.referrals import create
from tests.support import Api, assert_problem, assess_body, ok, referral_body

REASON = "Koordinasi layanan untuk orang yang sama"


def pointer(api: Api, rid: str) -> Any:
    return ok(api.get(rid))["possible_duplicate_of"]


def listed(api: Api, rid: str) -> dict[str, Any]:
    (item,) = [i for i in ok(api.list(limit=200))["items"] if i["id"] == rid]
    return item  # type: ignore[no-any-return]


def test_another_sender_gets_201_and_only_the_receiver_sees_the_pointer(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    body = referral_body("KEMENSOS")
    first = ok(lpsk.create(body), 201)

    response = kemenham.create(copy.deepcopy(body))

    second = ok(response, 201)
    # The sender learns nothing: no pointer in its answer, its reads or its list.
    assert second["possible_duplicate_of"] is None
    assert first["id"] not in response.text and first["reference"] not in response.text
    assert pointer(kemenham, second["id"]) is None
    assert listed(kemenham, second["id"])["possible_duplicate_of"] is None
    # The receiver, a party to both, is told.
    assert pointer(kemensos, second["id"]) == first["id"]
    assert listed(kemensos, second["id"])["possible_duplicate_of"] == first["id"]
    # The first referral points nowhere, and both stay open.
    assert pointer(kemensos, first["id"]) is None
    assert {ok(kemensos.get(r))["status"] for r in (first["id"], second["id"])} == {"referred"}


def test_a_party_sender_still_gets_409_naming_its_open_referral(
    lpsk: Api, kemenham: Api
) -> None:
    body = referral_body("KEMENSOS")
    mine = ok(kemenham.create(body), 201)
    ok(lpsk.create(copy.deepcopy(body)), 201)
    problem = assert_problem(kemenham.create(copy.deepcopy(body)), 409)
    assert problem["existing_referral_id"] == mine["id"]


def test_the_pointer_never_ties_a_protected_identity_to_a_plain_one(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    body = referral_body("KEMENSOS")
    protected = ok(lpsk.create({**body, "protected_identity": True}), 201)
    response = kemenham.create(copy.deepcopy(body))
    plain = ok(response, 201)
    # A pointer from the plain referral (identity shown) would name the protected person.
    assert pointer(kemensos, plain["id"]) is None
    assert protected["id"] not in kemensos.get(plain["id"]).text

    # The other way round, a protected referral's pointer is part of its identity: shown
    # only when it is revealed (with a reason, audited).
    other = referral_body("KEMENSOS")
    open_plain = ok(lpsk.create(other), 201)
    sealed = ok(kemenham.create({**copy.deepcopy(other), "protected_identity": True}), 201)
    assert pointer(kemensos, sealed["id"]) is None
    assert listed(kemensos, sealed["id"])["possible_duplicate_of"] is None
    revealed = kemensos.http.get(
        f"/v1/referrals/{sealed['id']}", params={"reveal": "identity"},
        headers=kemensos.headers(**{"X-Reveal-Reason": REASON}),
    )
    assert ok(revealed)["possible_duplicate_of"] == open_plain["id"]


def test_after_consent_withdrawal_the_receiver_loses_the_pointer(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    body = referral_body("KEMENSOS")
    ok(lpsk.create(body), 201)
    second = ok(kemenham.create(copy.deepcopy(body)), 201)
    ok(kemenham.act(second["id"], "consent-withdrawal",
                    {"withdrawn_at": dt.datetime.now(dt.UTC).isoformat()}))
    assert pointer(kemensos, second["id"]) is None


def test_a_closed_referral_is_no_duplicate(lpsk: Api, kemensos: Api, kemenham: Api) -> None:
    body = referral_body("KEMENSOS")
    first = ok(lpsk.create(body), 201)
    ok(lpsk.act(first["id"], "close", {"outcome": "withdrawn"}))
    second = ok(kemenham.create(copy.deepcopy(body)), 201)
    assert pointer(kemensos, second["id"]) is None


def test_an_onward_referral_follows_the_same_rule(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    body = referral_body("KEMENSOS")
    rid = ok(lpsk.create(body), 201)["id"]
    at_kemenham = ok(lpsk.create({**copy.deepcopy(body), "to_agency": "KEMENHAM"}), 201)
    ok(kemensos.act(rid, "assess", assess_body()))

    closed = ok(
        kemensos.act(rid, "close", {"outcome": "referred_onward", "onward_agency": "KEMENHAM"})
    )

    child = closed["closure"]["onward_referral_id"]
    assert pointer(kemensos, child) is None
    assert pointer(kemenham, child) == at_kemenham["id"]


def _together(*calls: Any) -> list[Response]:
    go = threading.Barrier(len(calls))
    results: list[Response | None] = [None] * len(calls)

    def run(index: int) -> None:
        go.wait(10)
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def test_concurrent_creates_from_two_senders_both_succeed(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    body = referral_body("KEMENSOS")
    responses = _together(
        lambda: lpsk.create(copy.deepcopy(body)), lambda: kemenham.create(copy.deepcopy(body))
    )
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    senders = {ok(kemensos.get(r.json()["id"]))["from_agency"] for r in responses}
    assert senders == {"LPSK", "KEMENHAM"}


def test_concurrent_creates_from_one_sender_make_one_and_name_it(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    responses = _together(
        lambda: lpsk.create({**copy.deepcopy(body), "summary": "first click"}),
        lambda: lpsk.create({**copy.deepcopy(body), "summary": "second click"}),
    )
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 201).json()["id"]
    loser = next(r for r in responses if r.status_code == 409)
    assert assert_problem(loser, 409)["existing_referral_id"] == winner


@pytest.mark.parametrize("path", ["create", "onward"])
def test_a_reference_already_taken_is_drawn_again(
    lpsk: Api, kemensos: Api, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    taken = lpsk.create_ok("KEMENSOS")["reference"]
    rid = lpsk.create_ok("KEMENSOS")["id"]
    ok(kemensos.act(rid, "assess", assess_body()))
    real = create.new_reference
    drawn: list[str] = []

    def draw(year: int) -> str:
        # The first draw is a reference already in use, as a rare random clash would be.
        drawn.append(real(year) if drawn else taken)
        return drawn[-1]

    monkeypatch.setattr(create, "new_reference", draw)
    if path == "create":
        made = ok(lpsk.create(referral_body("KEMENSOS")), 201)
    else:
        closed = ok(kemensos.act(
            rid, "close", {"outcome": "referred_onward", "onward_agency": "LPSK"}
        ))
        made = ok(kemensos.get(closed["closure"]["onward_referral_id"]))
    assert drawn[0] == taken and made["reference"] == drawn[1] != taken
    references = [i["reference"] for i in ok(kemensos.list(limit=200))["items"]]
    assert len(references) == len(set(references))
