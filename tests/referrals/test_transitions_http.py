"""The referral lifecycle over HTTP (CONTRACT §4 and §7), as an integrator drives it.

LPSK is the sending agency and KEMENSOS the receiving one throughout.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from httpx import Response

from tests.support import Api, assert_problem, assess_body, ok, referral_body, service_body

STATES = ("referred", "assessed", "served", "closed")
OUTCOMES = ("completed", "declined", "withdrawn", "unreachable", "deceased", "referred_onward")

# CONTRACT §4, written out again: action -> (who, from states, to state).
TABLE: dict[str, tuple[str, set[str], str]] = {
    "assess": ("receiver", {"referred"}, "assessed"),
    "serve": ("receiver", {"assessed"}, "served"),
    "record_service": ("receiver", {"served"}, "served"),
    "close:completed": ("receiver", {"served"}, "closed"),
    "close:declined": ("receiver", {"referred", "assessed"}, "closed"),
    "close:withdrawn": ("sender", {"referred", "assessed"}, "closed"),
    "close:unreachable": ("receiver", {"referred", "assessed", "served"}, "closed"),
    "close:deceased": ("receiver", {"referred", "assessed", "served"}, "closed"),
    "close:referred_onward": ("receiver", {"assessed", "served"}, "closed"),
}


def call_for(action: str) -> tuple[str, dict[str, Any]]:
    """The endpoint suffix and a valid body for an action."""
    if action == "assess":
        return "assess", assess_body()
    if action == "serve":
        return "serve", service_body()
    if action == "record_service":
        return "services", service_body(service_type="DUKUNGAN_PSIKOSOSIAL")
    outcome = action.split(":", 1)[1]
    body: dict[str, Any] = {"outcome": outcome, "notes": f"Closed as {outcome}."}
    if outcome == "declined":
        body["reason"] = "NOT_ELIGIBLE"
    if outcome == "referred_onward":
        body["onward_agency"] = "KEMENHAM"
    return "close", body


def drive(lpsk: Api, kemensos: Api, state: str, **overrides: Any) -> str:
    """A new LPSK -> KEMENSOS referral, moved to `state`; its id."""
    rid = lpsk.create_ok("KEMENSOS", **overrides)["id"]
    if state in ("assessed", "served"):
        ok(kemensos.act(rid, "assess", assess_body()))
    if state == "served":
        ok(kemensos.act(rid, "serve", service_body()))
    if state == "closed":
        ok(kemensos.act(rid, "close", {"outcome": "unreachable"}))
    assert ok(lpsk.get(rid))["status"] == state
    return rid


def snapshot(api: Api, rid: str) -> tuple[str, int, str, int]:
    """What a refused action must leave unchanged: status, version, ETag, history length."""
    response = api.get(rid)
    body = ok(response)
    return body["status"], body["version"], response.headers["ETag"], len(ok(api.history(rid)))


# ---- every cell of the table ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "action", "party"),
    list(itertools.product(STATES, TABLE, ("sender", "receiver"))),
)
def test_every_action_in_every_state_by_each_party(
    lpsk: Api, kemensos: Api, state: str, action: str, party: str
) -> None:
    rid = drive(lpsk, kemensos, state)
    actor = lpsk if party == "sender" else kemensos
    who, from_states, to = TABLE[action]
    before = snapshot(lpsk, rid)
    path, body = call_for(action)

    response = actor.act(rid, path, body)

    if party != who:
        assert_problem(response, 403)
    elif state not in from_states:
        problem = assert_problem(response, 409)
        assert problem["current_status"] == state
    else:
        after = ok(response)
        assert after["status"] == to
        assert after["version"] == before[1] + 1
        assert response.headers["ETag"] == f'"{after["version"]}"'
        history = ok(lpsk.history(rid))
        assert len(history) == before[3] + 1
        last = history[-1]
        assert (last["action"], last["from_status"], last["to_status"], last["actor_agency"]) == (
            action,
            state,
            to,
            actor.agency,
        )
        return
    assert snapshot(lpsk, rid) == before


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_close_outcome_is_recorded_in_the_closure(lpsk: Api, kemensos: Api, outcome: str) -> None:
    state = {"completed": "served", "referred_onward": "assessed"}.get(outcome, "referred")
    rid = drive(lpsk, kemensos, state)
    actor = lpsk if outcome == "withdrawn" else kemensos
    _, body = call_for(f"close:{outcome}")
    closed = ok(actor.act(rid, "close", body))
    closure = closed["closure"]
    assert closure["outcome"] == outcome
    assert closure["notes"] == body["notes"]
    assert closure["closed_at"]
    assert closure["reason"] == body.get("reason")
    assert closure["onward_agency"] == body.get("onward_agency")
    assert closed["due_at"] is None
    assert closed["is_overdue"] is False


# ---- scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "action", "scopes"),
    [
        ("referred", "assess", "referrals:read referrals:serve referrals:close referrals:write"),
        ("assessed", "serve", "referrals:read referrals:assess referrals:close referrals:write"),
        (
            "served",
            "record_service",
            "referrals:read referrals:assess referrals:close referrals:write",
        ),
        (
            "served",
            "close:completed",
            "referrals:read referrals:assess referrals:serve referrals:write",
        ),
        ("referred", "close:declined", "referrals:read referrals:write"),
    ],
)
def test_the_receiver_without_the_scope_gets_403_and_nothing_changes(
    lpsk: Api, kemensos: Api, state: str, action: str, scopes: str
) -> None:
    rid = drive(lpsk, kemensos, state)
    before = snapshot(lpsk, rid)
    path, body = call_for(action)
    response = kemensos.with_scope(scopes).act(rid, path, body)
    assert_problem(response, 403)
    assert snapshot(lpsk, rid) == before


def test_withdraw_needs_the_write_scope(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "referred")
    before = snapshot(lpsk, rid)
    limited = lpsk.with_scope("referrals:read referrals:close referrals:assess")
    assert_problem(limited.act(rid, "close", {"outcome": "withdrawn"}), 403)
    assert snapshot(lpsk, rid) == before
    ok(
        lpsk.with_scope("referrals:read referrals:write").act(
            rid, "close", {"outcome": "withdrawn"}
        )
    )


def test_a_read_only_token_can_read_but_not_write_notes(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "referred")
    reader = kemensos.with_scope("referrals:read")
    ok(reader.get(rid))
    ok(reader.history(rid))
    ok(reader.http.get(f"/v1/referrals/{rid}/notes", headers=reader.headers()))
    response = reader.http.post(
        f"/v1/referrals/{rid}/notes", json={"text": "Hello"}, headers=reader.headers()
    )
    assert_problem(response, 403)
    assert len(ok(lpsk.history(rid))) == 1


# ---- guards ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"outcome": "declined"},
        {"outcome": "declined", "reason": "NOT_A_REASON"},
        {"outcome": "declined", "reason": "NOT_ELIGIBLE", "onward_agency": "KEMENHAM"},
    ],
    ids=["no-reason", "unknown-reason", "with-onward-agency"],
)
def test_declined_needs_a_valid_decline_reason(
    lpsk: Api, kemensos: Api, body: dict[str, Any]
) -> None:
    rid = drive(lpsk, kemensos, "referred")
    before = snapshot(lpsk, rid)
    problem = assert_problem(kemensos.act(rid, "close", body), 422)
    assert problem["errors"]
    assert snapshot(lpsk, rid) == before


@pytest.mark.parametrize("reason", ["OUTSIDE_MANDATE", "CAPACITY_FULL", "SERVED_ELSEWHERE"])
def test_declined_with_a_known_reason_closes(lpsk: Api, kemensos: Api, reason: str) -> None:
    rid = drive(lpsk, kemensos, "assessed")
    closed = ok(kemensos.act(rid, "close", {"outcome": "declined", "reason": reason}))
    assert closed["closure"]["reason"] == reason


@pytest.mark.parametrize(
    ("state", "actor", "body"),
    [
        ("served", "receiver", {"outcome": "completed", "reason": "NOT_ELIGIBLE"}),
        ("referred", "sender", {"outcome": "withdrawn", "reason": "NOT_ELIGIBLE"}),
        ("referred", "receiver", {"outcome": "unreachable", "onward_agency": "KEMENHAM"}),
        ("assessed", "receiver", {"outcome": "referred_onward"}),
        (
            "served",
            "receiver",
            {"outcome": "referred_onward", "onward_agency": "KEMENHAM", "reason": "NOT_ELIGIBLE"},
        ),
        ("assessed", "receiver", {"outcome": "referred_onward", "onward_agency": "KEMENSOS"}),
        ("assessed", "receiver", {"outcome": "referred_onward", "onward_agency": "NOBODY"}),
        ("assessed", "receiver", {"outcome": "finished"}),
    ],
    ids=[
        "completed+reason",
        "withdrawn+reason",
        "unreachable+onward",
        "onward-missing",
        "onward+reason",
        "onward-to-self",
        "onward-unknown-agency",
        "unknown-outcome",
    ],
)
def test_close_bodies_that_fail_a_guard_get_422_and_change_nothing(
    lpsk: Api, kemensos: Api, state: str, actor: str, body: dict[str, Any]
) -> None:
    rid = drive(lpsk, kemensos, state)
    before = snapshot(lpsk, rid)
    api = lpsk if actor == "sender" else kemensos
    problem = assert_problem(api.act(rid, "close", body), 422)
    assert problem["errors"]
    assert snapshot(lpsk, rid) == before


# ---- If-Match and ETag ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "action"),
    [
        ("referred", "assess"),
        ("assessed", "serve"),
        ("served", "record_service"),
        ("served", "close:completed"),
        ("referred", "close:withdrawn"),
    ],
)
def test_an_action_without_if_match_gets_428(
    lpsk: Api, kemensos: Api, state: str, action: str
) -> None:
    rid = drive(lpsk, kemensos, state)
    before = snapshot(lpsk, rid)
    path, body = call_for(action)
    actor = lpsk if action == "close:withdrawn" else kemensos
    assert_problem(actor.act(rid, path, body, etag=None), 428)
    assert snapshot(lpsk, rid) == before


@pytest.mark.parametrize(
    ("state", "action"),
    [
        ("referred", "assess"),
        ("assessed", "serve"),
        ("served", "record_service"),
        ("served", "close:completed"),
        ("referred", "close:withdrawn"),
    ],
)
def test_an_action_with_a_stale_etag_gets_412(
    lpsk: Api, kemensos: Api, state: str, action: str
) -> None:
    rid = drive(lpsk, kemensos, state)
    before = snapshot(lpsk, rid)
    version = before[1]
    path, body = call_for(action)
    actor = lpsk if action == "close:withdrawn" else kemensos
    stale = [f'"{v}"' for v in (version - 1, version + 1, 0) if v != version]
    for tag in stale:
        problem = assert_problem(actor.act(rid, path, body, etag=tag), 412)
        assert "detail" in problem
    assert snapshot(lpsk, rid) == before


def test_the_second_of_two_actions_on_the_same_version_gets_412(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "referred")
    seen = lpsk.get(rid).headers["ETag"]
    ok(kemensos.act(rid, "assess", assess_body(), etag=seen))
    before = snapshot(lpsk, rid)
    # The sender withdraws, based on the version it saw before the assessment.
    assert_problem(lpsk.act(rid, "close", {"outcome": "withdrawn"}, etag=seen), 412)
    assert snapshot(lpsk, rid) == before


def test_etag_is_the_quoted_version_and_changes_on_every_change(lpsk: Api, kemensos: Api) -> None:
    created = lpsk.create(referral_body("KEMENSOS"))
    assert created.status_code == 201
    tags = [created.headers["ETag"]]
    assert tags[0] == f'"{created.json()["version"]}"'
    rid = created.json()["id"]
    steps = [
        ("assess", assess_body()),
        ("serve", service_body()),
        ("services", service_body(service_type="DUKUNGAN_PSIKOSOSIAL")),
        ("services", service_body(service_type="PELATIHAN_VOKASIONAL")),
        ("close", {"outcome": "completed"}),
    ]
    for path, body in steps:
        response = kemensos.act(rid, path, body)
        data = ok(response)
        assert response.headers["ETag"] == f'"{data["version"]}"'
        for reader in (lpsk, kemensos):
            read = reader.get(rid)
            assert read.headers["ETag"] == response.headers["ETag"]
            assert read.json()["version"] == data["version"]
        tags.append(response.headers["ETag"])
    assert len(set(tags)) == len(tags)
    versions = [int(t.strip('"')) for t in tags]
    assert versions == sorted(versions)


def test_the_etag_of_a_read_is_accepted_as_if_match(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "referred")
    tag = kemensos.get(rid).headers["ETag"]
    ok(kemensos.act(rid, "assess", assess_body(), etag=tag))


def test_a_stale_etag_gets_a_412_that_names_both_versions(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "assessed")
    problem = assert_problem(kemensos.act(rid, "serve", service_body(), etag='"1"'), 412)
    assert '"1"' in problem["detail"] and "version 2" in problem["detail"]
    assert problem["current_version"] == 2


@pytest.mark.parametrize("value", ["1", "2", "W/2", '"2'])
def test_an_if_match_that_is_not_a_quoted_etag_gets_400_showing_the_quoted_form(
    lpsk: Api, kemensos: Api, value: str
) -> None:
    rid = drive(lpsk, kemensos, "assessed")
    before = snapshot(lpsk, rid)
    assert before[2] == '"2"'
    problem = assert_problem(kemensos.act(rid, "serve", service_body(), etag=value), 400)
    assert 'If-Match: "' in problem["detail"]
    assert "now at" not in problem["detail"]
    if value.isdigit():
        assert f'If-Match: "{value}"' in problem["detail"]
    assert snapshot(lpsk, rid) == before


def test_if_match_star_acts_on_whatever_version_is_current(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "referred")
    assessed = ok(kemensos.act(rid, "assess", assess_body(), etag="*"))
    assert assessed["status"] == "assessed" and assessed["version"] == 2
    ok(_add_note(lpsk, rid, "Any version.", **{"If-Match": "*"}), 201)
    served = ok(kemensos.act(rid, "serve", service_body(), etag="*"))
    # A note does not change the referral's version.
    assert served["version"] == 3
    # `*` asks only that the referral exists: the state machine still decides.
    assert_problem(lpsk.act(rid, "close", {"outcome": "withdrawn"}, etag="*"), 409)
    # And it is no way round visibility.
    assert_problem(lpsk.act(str(uuid.uuid4()), "assess", assess_body(), etag="*"), 404)


def test_a_weak_etag_never_matches_and_the_412_says_why(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "referred")
    before = snapshot(lpsk, rid)
    problem = assert_problem(kemensos.act(rid, "assess", assess_body(), etag='W/"1"'), 412)
    assert "strong comparison" in problem["detail"]
    assert '"1"' in problem["detail"]
    assert snapshot(lpsk, rid) == before


# ---- referred onward ------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["assessed", "served"])
def test_referred_onward_creates_the_linked_child_referral(
    lpsk: Api, kemensos: Api, kemenham: Api, state: str
) -> None:
    rid = drive(lpsk, kemensos, state)
    parent_before = ok(lpsk.get(rid))
    closed = ok(
        kemensos.act(rid, "close", {"outcome": "referred_onward", "onward_agency": "KEMENHAM"})
    )
    assert closed["status"] == "closed"
    child_id = closed["closure"]["onward_referral_id"]
    assert child_id
    assert closed["closure"]["onward_agency"] == "KEMENHAM"

    child = ok(kemenham.get(child_id))
    assert child["parent_id"] == rid
    assert child["from_agency"] == "KEMENSOS"
    assert child["to_agency"] == "KEMENHAM"
    assert child["status"] == "referred"
    assert child["version"] == 1
    assert child["reference"] != parent_before["reference"]
    assert child["subject"]["nik"] == parent_before["subject"]["nik"]
    assert child["subject"]["full_name"] == parent_before["subject"]["full_name"]
    assert child["groups"] == parent_before["groups"]
    assert child["case_types"] == parent_before["case_types"]
    assert child["urgency"] == parent_before["urgency"]

    incoming = ok(kemenham.list(direction="incoming"))["items"]
    assert [item["id"] for item in incoming] == [child_id]
    assert ok(kemensos.get(child_id))["parent_id"] == rid
    assert child_id in [i["id"] for i in ok(kemensos.list(direction="outgoing"))["items"]]
    history = ok(kemenham.history(child_id))
    assert [h["action"] for h in history] == ["create"]
    assert history[0]["actor_agency"] == "KEMENSOS"


def test_the_closure_history_names_the_child(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "served")
    closed = ok(
        kemensos.act(rid, "close", {"outcome": "referred_onward", "onward_agency": "KEMENHAM"})
    )
    last = ok(lpsk.history(rid))[-1]
    assert last["action"] == "close:referred_onward"
    assert last["detail"]["onward_referral_id"] == closed["closure"]["onward_referral_id"]
    assert last["detail"]["onward_agency"] == "KEMENHAM"


def test_a_referral_can_be_referred_onward_back_to_its_sender(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "assessed")
    closed = ok(kemensos.act(rid, "close", {"outcome": "referred_onward", "onward_agency": "LPSK"}))
    child = ok(lpsk.get(closed["closure"]["onward_referral_id"]))
    assert (child["from_agency"], child["to_agency"], child["parent_id"]) == (
        "KEMENSOS",
        "LPSK",
        rid,
    )


def test_the_onward_agency_can_work_the_child_referral(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    rid = drive(lpsk, kemensos, "assessed")
    closed = ok(
        kemensos.act(rid, "close", {"outcome": "referred_onward", "onward_agency": "KEMENHAM"})
    )
    child_id = closed["closure"]["onward_referral_id"]
    assessed = ok(
        kemenham.act(
            child_id,
            "assess",
            assess_body("KEMENHAM", needs=["BANTUAN_HUKUM"], approach="community"),
        )
    )
    assert assessed["status"] == "assessed"
    ok(kemensos.act(child_id, "close", {"outcome": "withdrawn"}))


def test_referred_onward_is_all_or_nothing(lpsk: Api, kemensos: Api, kemenham: Api) -> None:
    # KEMENSOS already has the person open at KEMENHAM, so the child cannot be created.
    body = referral_body("KEMENSOS")
    rid = ok(lpsk.create(body), 201)["id"]
    other = ok(kemensos.create({**body, "to_agency": "KEMENHAM"}), 201)["id"]
    ok(kemensos.act(rid, "assess", assess_body()))
    before = snapshot(lpsk, rid)

    response = kemensos.act(
        rid, "close", {"outcome": "referred_onward", "onward_agency": "KEMENHAM"}
    )

    assert assert_problem(response, 409)["existing_referral_id"] == other
    assert snapshot(lpsk, rid) == before
    assert [i["id"] for i in ok(kemenham.list())["items"]] == [other]
    assert [i["id"] for i in ok(kemensos.list(direction="outgoing"))["items"]] == [other]


# ---- notes ----------------------------------------------------------------------------------


def _notes(api: Api, rid: str) -> Response:
    return api.http.get(f"/v1/referrals/{rid}/notes", headers=api.headers())


def _add_note(api: Api, rid: str, text: str, **headers: str) -> Response:
    return api.http.post(
        f"/v1/referrals/{rid}/notes", json={"text": text}, headers=api.headers(**headers)
    )


@pytest.mark.parametrize("state", STATES)
def test_either_party_adds_notes_in_any_state(lpsk: Api, kemensos: Api, state: str) -> None:
    rid = drive(lpsk, kemensos, state)
    status, version, tag, history_length = snapshot(lpsk, rid)

    first = ok(_add_note(lpsk, rid, "From the sender."), 201)
    second = ok(_add_note(kemensos, rid, "From the receiver."), 201)

    assert first["author_agency"] == "LPSK"
    assert second["author_agency"] == "KEMENSOS"
    for reader in (lpsk, kemensos):
        notes = ok(_notes(reader, rid))
        assert [(n["id"], n["text"], n["author_agency"]) for n in notes] == [
            (first["id"], "From the sender.", "LPSK"),
            (second["id"], "From the receiver.", "KEMENSOS"),
        ]
    history = ok(lpsk.history(rid))
    assert len(history) == history_length + 2
    assert [
        (h["action"], h["actor_agency"], h["from_status"], h["to_status"]) for h in history[-2:]
    ] == [
        ("add_note", "LPSK", state, state),
        ("add_note", "KEMENSOS", state, state),
    ]
    after = ok(lpsk.get(rid))
    assert (after["status"], after["version"]) == (status, version)


def test_notes_are_listed_oldest_first(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "referred")
    texts = [f"Note number {n}" for n in range(7)]
    for n, text in enumerate(texts):
        ok(_add_note(lpsk if n % 2 else kemensos, rid, text), 201)
    notes = ok(_notes(lpsk, rid))
    assert [n["text"] for n in notes] == texts
    stamps = [n["created_at"] for n in notes]
    assert stamps == sorted(stamps)


def test_a_note_with_a_matching_if_match_is_accepted_and_a_stale_one_is_412(
    lpsk: Api, kemensos: Api
) -> None:
    rid = drive(lpsk, kemensos, "assessed")
    tag = lpsk.get(rid).headers["ETag"]
    ok(_add_note(lpsk, rid, "With If-Match.", **{"If-Match": tag}), 201)
    assert_problem(_add_note(lpsk, rid, "Stale.", **{"If-Match": '"1"'}), 412)
    assert [n["text"] for n in ok(_notes(lpsk, rid))] == ["With If-Match."]


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "x" * 4001}, {"text": "a", "x": 1}])
def test_an_invalid_note_gets_422(lpsk: Api, kemensos: Api, body: dict[str, Any]) -> None:
    rid = drive(lpsk, kemensos, "referred")
    response = lpsk.http.post(f"/v1/referrals/{rid}/notes", json=body, headers=lpsk.headers())
    assert assert_problem(response, 422)["errors"]
    assert ok(_notes(lpsk, rid)) == []


# ---- history --------------------------------------------------------------------------------


def test_history_holds_exactly_the_successful_actions(lpsk: Api, kemensos: Api) -> None:
    rid = lpsk.create_ok("KEMENSOS")["id"]
    assert_problem(lpsk.act(rid, "assess", assess_body()), 403)
    assert_problem(kemensos.act(rid, "serve", service_body()), 409)
    ok(kemensos.act(rid, "assess", assess_body()))
    assert_problem(kemensos.act(rid, "assess", assess_body()), 409)
    ok(_add_note(lpsk, rid, "Checking in."), 201)
    assert_problem(kemensos.act(rid, "serve", service_body(), etag='"1"'), 412)
    ok(kemensos.act(rid, "serve", service_body()))
    assert_problem(kemensos.act(rid, "services", service_body(service_unit="LPSK_RUMAH_AMAN")), 422)
    ok(kemensos.act(rid, "services", service_body(service_type="TERAPI")))
    assert_problem(
        kemensos.act(rid, "close", {"outcome": "declined", "reason": "NOT_ELIGIBLE"}), 409
    )
    ok(kemensos.act(rid, "close", {"outcome": "completed"}))
    assert_problem(lpsk.act(rid, "close", {"outcome": "withdrawn"}), 409)

    history = ok(lpsk.history(rid))
    assert [
        (h["action"], h["from_status"], h["to_status"], h["actor_agency"]) for h in history
    ] == [
        ("create", None, "referred", "LPSK"),
        ("assess", "referred", "assessed", "KEMENSOS"),
        ("add_note", "assessed", "assessed", "LPSK"),
        ("serve", "assessed", "served", "KEMENSOS"),
        ("record_service", "served", "served", "KEMENSOS"),
        ("close:completed", "served", "closed", "KEMENSOS"),
    ]
    assert ok(kemensos.history(rid)) == history
    stamps = [h["occurred_at"] for h in history]
    assert stamps == sorted(stamps)
    assert len({h["id"] for h in history}) == len(history)


# ---- ATENSI and service units --------------------------------------------------------------


def test_empowerment_before_the_assessed_rehabilitation_is_refused(
    lpsk: Api, kemensos: Api
) -> None:
    rid = lpsk.create_ok("KEMENSOS")["id"]
    ok(
        kemensos.act(
            rid, "assess", assess_body(needs=["REHABILITASI_SOSIAL", "PELATIHAN_VOKASIONAL"])
        )
    )
    before = snapshot(lpsk, rid)
    problem = assert_problem(
        kemensos.act(rid, "serve", service_body(service_type="PELATIHAN_VOKASIONAL")), 422
    )
    assert any("service_type" in e["loc"] for e in problem["errors"])
    assert snapshot(lpsk, rid) == before

    served = ok(kemensos.act(rid, "serve", service_body(service_type="REHABILITASI_SOSIAL")))
    assert [s["phase"] for s in served["services"]] == ["rehabilitation"]
    more = ok(kemensos.act(rid, "services", service_body(service_type="PELATIHAN_VOKASIONAL")))
    assert [(s["service_type"], s["phase"]) for s in more["services"]] == [
        ("REHABILITASI_SOSIAL", "rehabilitation"),
        ("PELATIHAN_VOKASIONAL", "empowerment"),
    ]


def test_empowerment_first_is_allowed_when_no_rehabilitation_was_assessed(
    lpsk: Api, kemensos: Api
) -> None:
    rid = lpsk.create_ok("KEMENSOS")["id"]
    ok(kemensos.act(rid, "assess", assess_body(needs=["PENDIDIKAN", "PELATIHAN_VOKASIONAL"])))
    served = ok(kemensos.act(rid, "serve", service_body(service_type="PELATIHAN_VOKASIONAL")))
    assert served["services"][0]["phase"] == "empowerment"


@pytest.mark.parametrize(
    ("state", "path", "body"),
    [
        ("referred", "assess", assess_body(service_unit="LPSK_RUMAH_AMAN")),
        (
            "referred",
            "assess",
            assess_body(service_unit="KEMENHAM_PELAYANAN_KOMUNIKASI_MASYARAKAT"),
        ),
        ("referred", "assess", assess_body(service_unit="NO_SUCH_UNIT")),
        ("referred", "assess", assess_body(needs=["NO_SUCH_SERVICE"])),
        ("referred", "assess", assess_body(needs=[])),
        ("referred", "assess", assess_body(approach="online")),
        ("assessed", "serve", service_body(service_unit="LPSK_RUMAH_AMAN")),
        ("assessed", "serve", service_body(service_type="NO_SUCH_SERVICE")),
        ("assessed", "serve", service_body(started_at="2026-02-01T08:00:00")),
        ("served", "services", service_body(service_unit="KEMENHAM_KANWIL_SUMATERA_BARAT")),
    ],
    ids=[
        "assess-lpsk-unit",
        "assess-kemenham-unit",
        "assess-unknown-unit",
        "assess-unknown-need",
        "assess-no-needs",
        "assess-bad-approach",
        "serve-lpsk-unit",
        "serve-unknown-type",
        "serve-naive-time",
        "services-kemenham-unit",
    ],
)
def test_invalid_assessment_or_service_gets_422(
    lpsk: Api, kemensos: Api, state: str, path: str, body: dict[str, Any]
) -> None:
    rid = drive(lpsk, kemensos, state)
    before = snapshot(lpsk, rid)
    assert assert_problem(kemensos.act(rid, path, body), 422)["errors"]
    assert snapshot(lpsk, rid) == before


# ---- response shape -------------------------------------------------------------------------

REFERRAL_FIELDS = {
    "id",
    "reference",
    "status",
    "from_agency",
    "to_agency",
    "subject",
    "protected_identity",
    "groups",
    "kemenham_groups",
    "case_types",
    "urgency",
    "summary",
    "consent",
    "external_ref",
    "assessment",
    "services",
    "closure",
    "parent_id",
    "due_at",
    "created_at",
    "updated_at",
    "version",
}
SUBJECT_FIELDS = {"full_name", "nik", "birth_date", "sex", "address", "region_code", "phone"}


def test_action_responses_carry_the_whole_referral(lpsk: Api, kemensos: Api) -> None:
    body = referral_body("KEMENSOS", external_ref="LPSK-2026-0042")
    rid = ok(lpsk.create(body), 201)["id"]

    assessed = ok(kemensos.act(rid, "assess", assess_body()))
    assert set(assessed) >= REFERRAL_FIELDS
    assert set(assessed["subject"]) >= SUBJECT_FIELDS
    assert {k: assessed["subject"][k] for k in ("full_name", "nik", "sex")} == {
        k: body["subject"][k] for k in ("full_name", "nik", "sex")
    }
    assert assessed["external_ref"] == "LPSK-2026-0042"
    assert assessed["assessment"]["needs"] == ["REHABILITASI_SOSIAL"]
    assert assessed["assessment"]["approach"] == "residential"
    assert assessed["assessment"]["service_unit"] == "SENTRA_HANDAYANI"
    assert assessed["assessment"]["notes"] == "Needs a residential placement."
    assert assessed["services"] == []
    assert assessed["closure"] is None

    served = ok(kemensos.act(rid, "serve", service_body()))
    [service] = served["services"]
    assert service["service_type"] == "REHABILITASI_SOSIAL"
    assert service["service_unit"] == "SENTRA_HANDAYANI"
    assert service["phase"] == "rehabilitation"
    assert service["notes"] == "Admitted."
    assert service["id"] and service["recorded_at"] and service["started_at"]
    assert served["updated_at"] >= assessed["updated_at"]
    assert served["created_at"] == assessed["created_at"]


def test_history_and_notes_are_json(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "referred")
    ok(_add_note(kemensos, rid, "Hello."), 201)
    [entry, _] = ok(lpsk.history(rid))
    assert {"id", "action", "from_status", "to_status", "actor_agency", "occurred_at"} <= set(entry)
    [note] = ok(_notes(lpsk, rid))
    assert set(note) >= {"id", "text", "author_agency", "created_at"}


@pytest.mark.parametrize("path", ["", "/history", "/notes"])
def test_an_unknown_referral_is_a_404_problem(lpsk: Api, path: str) -> None:
    response = lpsk.http.get(
        f"/v1/referrals/00000000-0000-4000-8000-000000000000{path}", headers=lpsk.headers()
    )
    assert_problem(response, 404)


def test_a_malformed_referral_id_is_a_problem(lpsk: Api) -> None:
    response = lpsk.http.get("/v1/referrals/not-a-uuid", headers=lpsk.headers())
    assert response.status_code in (404, 422)
    assert_problem(response, response.status_code)


def test_a_problem_never_carries_internals(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "served")
    responses = [
        lpsk.act(rid, "assess", assess_body()),
        kemensos.act(rid, "assess", assess_body()),
        kemensos.act(rid, "services", service_body(), etag='"1"'),
        kemensos.act(rid, "services", service_body(), etag=None),
        kemensos.act(rid, "close", {"outcome": "declined"}),
    ]
    for response in responses:
        assert_problem(response, response.status_code)
        text = response.text.lower()
        for leak in ("traceback", "sqlalchemy", "select ", "psycopg", "sqlite", 'file "'):
            assert leak not in text


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/referrals/{rid}", 401),
        ("POST", "/v1/referrals/{rid}/assess", 401),
        ("DELETE", "/v1/referrals/{rid}", 405),
        ("PUT", "/v1/referrals/{rid}/close", 405),
        ("GET", "/v1/referrals/{rid}/nothing-here", 404),
    ],
)
def test_errors_outside_the_workflow_are_problems_too(
    lpsk: Api, kemensos: Api, method: str, path: str, status: int
) -> None:
    rid = drive(lpsk, kemensos, "referred")
    headers = {} if status == 401 else lpsk.headers()
    response = lpsk.http.request(method, path.format(rid=rid), headers=headers)
    assert_problem(response, status)


def test_a_bad_token_is_a_401_problem_with_a_challenge(lpsk: Api, kemensos: Api) -> None:
    rid = drive(lpsk, kemensos, "referred")
    response = lpsk.http.get(f"/v1/referrals/{rid}", headers={"Authorization": "Bearer not.a.jwt"})
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
