"""The referral state machine (service.referrals.workflow) against CONTRACT §4, cell by cell.

The expected table is written out here from the contract, independently of
`workflow.TRANSITIONS`, so that a change of the table that breaks the contract fails here.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, get_args

import pytest

from service.referrals import workflow
from service.referrals.schemas import Status
from service.referrals.workflow import Party, Refusal

STATES = ("referred", "assessed", "served", "closed")
PARTIES = (Party.SENDER, Party.RECEIVER)
ALL_GRANTED = frozenset(
    {
        "referrals:read",
        "referrals:write",
        "referrals:assess",
        "referrals:serve",
        "referrals:close",
        "webhooks:manage",
        "audit:read",
        "admin",
    }
)

# CONTRACT §4: action -> (who, states it is legal from, state it leads to, scope (§3)).
EXPECTED: dict[str, tuple[Party, frozenset[str], str, str]] = {
    "assess": (Party.RECEIVER, frozenset({"referred"}), "assessed", "referrals:assess"),
    "serve": (Party.RECEIVER, frozenset({"assessed"}), "served", "referrals:serve"),
    "record_service": (Party.RECEIVER, frozenset({"served"}), "served", "referrals:serve"),
    "close:completed": (Party.RECEIVER, frozenset({"served"}), "closed", "referrals:close"),
    "close:declined": (
        Party.RECEIVER,
        frozenset({"referred", "assessed"}),
        "closed",
        "referrals:close",
    ),
    # §3: referrals:write covers create, withdraw and notes.
    "close:withdrawn": (
        Party.SENDER,
        frozenset({"referred", "assessed"}),
        "closed",
        "referrals:write",
    ),
    "close:unreachable": (
        Party.RECEIVER,
        frozenset({"referred", "assessed", "served"}),
        "closed",
        "referrals:close",
    ),
    "close:deceased": (
        Party.RECEIVER,
        frozenset({"referred", "assessed", "served"}),
        "closed",
        "referrals:close",
    ),
    "close:referred_onward": (
        Party.RECEIVER,
        frozenset({"assessed", "served"}),
        "closed",
        "referrals:close",
    ),
    # Issue 3 (UU PDP): the person withdraws consent; either party records it, from any open
    # state, through POST /consent-withdrawal only (not a POST /close outcome).
    "close:consent_withdrawn": (
        Party.EITHER,
        frozenset({"referred", "assessed", "served"}),
        "closed",
        "referrals:write",
    ),
}

# CONTRACT §6 event names.
EXPECTED_EVENT = {
    "assess": "referral.assessed",
    "serve": "referral.served",
    "record_service": "referral.service_recorded",
    **{action: "referral.closed" for action in EXPECTED if action.startswith("close:")},
    # Issue 4: a consent withdrawal is announced as such, not as a plain close.
    "close:consent_withdrawn": "referral.consent_withdrawn",
}

# A request that satisfies every guard of the action.
VALID_REQUEST: dict[str, dict[str, Any]] = {
    "close:declined": {"outcome": "declined", "reason": "NOT_ELIGIBLE"},
    "close:referred_onward": {"outcome": "referred_onward", "onward_agency": "KEMENHAM"},
}

OUTCOMES = ("completed", "declined", "withdrawn", "unreachable", "deceased", "referred_onward")


def _request(action: str) -> dict[str, Any]:
    default = {"outcome": action.split(":", 1)[1]} if action.startswith("close:") else {}
    return dict(VALID_REQUEST.get(action, default))


def _decide(
    state: str,
    action: str,
    party: Party,
    request: dict[str, Any] | None = None,
    granted: frozenset[str] = ALL_GRANTED,
) -> workflow.Transition:
    return workflow.decide(
        state,
        action,
        party=party,
        granted=granted,
        request=_request(action) if request is None else request,
    )


def _refusal(
    state: str,
    action: str,
    party: Party,
    request: dict[str, Any] | None = None,
    granted: frozenset[str] = ALL_GRANTED,
) -> Refusal:
    with pytest.raises(Refusal) as caught:
        _decide(state, action, party, request, granted)
    return caught.value


def _actor(state: str, action: str) -> tuple[str, Party]:
    return state, EXPECTED[action][0]


ALLOWED_CELLS = [
    (state, action) for action, (_, states, _, _) in EXPECTED.items() for state in sorted(states)
]


# ---- the table as a whole ------------------------------------------------------------------


def test_the_actions_are_exactly_those_of_the_contract() -> None:
    assert set(workflow.ACTIONS) == set(EXPECTED)


def test_every_close_outcome_of_the_contract_is_an_action() -> None:
    assert {f"close:{o}" for o in OUTCOMES} <= set(workflow.ACTIONS)


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_allowed_from_lists_exactly_the_contract_states(action: str) -> None:
    assert set(workflow.allowed_from(action)) == EXPECTED[action][1]


@pytest.mark.parametrize(
    ("state", "action", "party"),
    list(itertools.product(STATES, sorted(EXPECTED), PARTIES)),
    ids=lambda v: str(v),
)
def test_decision_of_every_cell_matches_the_contract(state: str, action: str, party: Party) -> None:
    who, states, to, scope = EXPECTED[action]
    if who is not Party.EITHER and party is not who:
        refusal = _refusal(state, action, party)
        assert refusal.kind == "party"
        assert who.value in str(refusal.detail)
    elif state not in states:
        refusal = _refusal(state, action, party)
        assert refusal.kind == "state"
        assert state in str(refusal.detail)
    else:
        transition = _decide(state, action, party)
        assert transition.to == to
        assert transition.party is who
        assert transition.scope == scope
        assert workflow.NAMES[action].event == EXPECTED_EVENT[action]


@pytest.mark.parametrize("action", sorted(EXPECTED))
@pytest.mark.parametrize("party", PARTIES, ids=str)
def test_closed_is_final_for_everyone(action: str, party: Party) -> None:
    refusal = _refusal("closed", action, party)
    assert refusal.kind in {"party", "state"}


def test_record_service_keeps_a_served_referral_served() -> None:
    assert _decide("served", "record_service", Party.RECEIVER).to == "served"


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(Refusal):
        workflow.decide(
            "referred", "close:forgotten", party=Party.RECEIVER, granted=ALL_GRANTED, request={}
        )


def test_notes_are_for_either_party_with_the_write_scope() -> None:
    assert workflow.NOTE_PARTY is Party.EITHER
    assert workflow.NOTE_SCOPE == "referrals:write"


# ---- scopes -------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "action"), ALLOWED_CELLS)
def test_a_legal_move_without_its_scope_is_a_scope_refusal(state: str, action: str) -> None:
    _, party = _actor(state, action)
    scope = EXPECTED[action][3]
    refusal = _refusal(state, action, party, granted=ALL_GRANTED - {scope})
    assert refusal.kind == "scope"
    assert scope in str(refusal.detail)


@pytest.mark.parametrize(("state", "action"), ALLOWED_CELLS)
def test_a_legal_move_needs_only_its_own_scope(state: str, action: str) -> None:
    _, party = _actor(state, action)
    scope = EXPECTED[action][3]
    assert _decide(state, action, party, granted=frozenset({scope})).to == EXPECTED[action][2]


# ---- guards -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["referred", "assessed"])
@pytest.mark.parametrize(
    "request_", [{"outcome": "declined"}, {"outcome": "declined", "reason": ""}, None]
)
def test_declined_needs_a_reason(state: str, request_: dict[str, Any] | None) -> None:
    with pytest.raises(Refusal) as caught:
        workflow.decide(
            state, "close:declined", party=Party.RECEIVER, granted=ALL_GRANTED, request=request_
        )
    assert caught.value.kind == "guard"
    assert caught.value.problems
    assert any(field == "reason" for field, _ in caught.value.problems)


@pytest.mark.parametrize("state", ["assessed", "served"])
@pytest.mark.parametrize(
    "request_",
    [{"outcome": "referred_onward"}, {"outcome": "referred_onward", "onward_agency": ""}, None],
)
def test_referred_onward_needs_the_onward_agency(
    state: str, request_: dict[str, Any] | None
) -> None:
    with pytest.raises(Refusal) as caught:
        workflow.decide(
            state,
            "close:referred_onward",
            party=Party.RECEIVER,
            granted=ALL_GRANTED,
            request=request_,
        )
    assert caught.value.kind == "guard"
    assert any(field == "onward_agency" for field, _ in caught.value.problems)


@pytest.mark.parametrize(
    ("state", "action"),
    [
        cell
        for cell in ALLOWED_CELLS
        if cell[1].startswith("close:") and cell[1] != "close:declined"
    ],
)
def test_a_reason_is_refused_with_any_outcome_but_declined(state: str, action: str) -> None:
    _, party = _actor(state, action)
    request = {**_request(action), "reason": "NOT_ELIGIBLE"}
    refusal = _refusal(state, action, party, request)
    assert refusal.kind == "guard"
    assert any(field == "reason" for field, _ in refusal.problems)


@pytest.mark.parametrize(
    ("state", "action"),
    [
        cell
        for cell in ALLOWED_CELLS
        if cell[1].startswith("close:") and cell[1] != "close:referred_onward"
    ],
)
def test_an_onward_agency_is_refused_with_any_outcome_but_referred_onward(
    state: str, action: str
) -> None:
    _, party = _actor(state, action)
    request = {**_request(action), "onward_agency": "KEMENHAM"}
    refusal = _refusal(state, action, party, request)
    assert refusal.kind == "guard"
    assert any(field == "onward_agency" for field, _ in refusal.problems)


def test_a_guard_reports_every_problem_at_once() -> None:
    refusal = _refusal(
        "referred",
        "close:declined",
        Party.RECEIVER,
        {"outcome": "declined", "onward_agency": "KEMENHAM"},
    )
    assert refusal.kind == "guard"
    assert {field for field, _ in refusal.problems} == {"reason", "onward_agency"}


def test_a_guard_is_not_consulted_when_the_state_is_wrong() -> None:
    refusal = _refusal("served", "close:declined", Party.RECEIVER, {"outcome": "declined"})
    assert refusal.kind == "state"


def test_the_wrong_party_is_refused_before_a_guard() -> None:
    refusal = _refusal("referred", "close:declined", Party.SENDER, {"outcome": "declined"})
    assert refusal.kind == "party"


@pytest.mark.parametrize(("state", "action"), ALLOWED_CELLS)
def test_decide_does_not_change_the_request(state: str, action: str) -> None:
    _, party = _actor(state, action)
    request = _request(action)
    before = copy.deepcopy(request)
    _decide(state, action, party, request)
    assert request == before


def test_the_api_documents_exactly_the_statuses_the_workflow_stores() -> None:
    """The `status` a client may receive or filter by is the workflow's, in lifecycle order."""
    assert get_args(Status) == tuple(workflow.ReferralStatus) == STATES
    assert workflow.OPEN_STATUSES == ("referred", "assessed", "served")


def test_each_action_is_recorded_under_the_names_already_stored() -> None:
    """History rows, audit entries and webhook event types keep the names they were stored
    and sent under: the three derive from the action's name."""
    recorded = {a: (n.history, n.audit, n.event) for a, n in workflow.NAMES.items()}
    assert recorded["create"] == ("create", "referral.create", "referral.created")
    assert recorded["add_note"] == ("add_note", "referral.add_note", "referral.note_added")
    assert recorded["record_service"] == (
        "record_service", "referral.record_service", "referral.service_recorded"
    )
    assert recorded["close:completed"] == (
        "close:completed", "referral.close.completed", "referral.closed"
    )
    assert recorded["close:consent_withdrawn"] == (
        "close:consent_withdrawn", "referral.consent_withdrawn", "referral.consent_withdrawn"
    )
