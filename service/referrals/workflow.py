"""The referral state machine as data: (state, action) -> (next state, who may, scope, guard).

Pure: no I/O. The service asks `decide()` before every change and never sets `status` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from service.auth import scopes
from service.i18n import N_, Message, join, msg


class ReferralStatus(StrEnum):
    """Where a referral stands; stored as this string (the referral table's CHECK lists them)."""

    REFERRED = "referred"
    ASSESSED = "assessed"
    SERVED = "served"
    CLOSED = "closed"


REFERRED, ASSESSED, SERVED, CLOSED = (
    ReferralStatus.REFERRED,
    ReferralStatus.ASSESSED,
    ReferralStatus.SERVED,
    ReferralStatus.CLOSED,
)
# Every status but closed, in the order a referral passes through them.
OPEN_STATUSES = tuple(status for status in ReferralStatus if status is not CLOSED)
# Services are recorded only by `serve` and `record_service`, so only a referral that has
# been served (and perhaps closed since) can have any.
MAY_HAVE_SERVICES = frozenset({SERVED, CLOSED})

# Closing because the person withdrew consent (UU PDP): either party records it, from any
# open state, through POST /v1/referrals/{id}/consent-withdrawal only (not POST /close).
CONSENT_WITHDRAWN = "consent_withdrawn"
WITHDRAW_CONSENT = f"close:{CONSENT_WITHDRAWN}"


class Party(StrEnum):
    SENDER = "sender"
    RECEIVER = "receiver"
    EITHER = "either"


# What a guard finds wrong with a request: (the body field, what is wrong with it).
Problem = tuple[str, Message]
Guard = Callable[[Mapping[str, Any]], list[Problem]]


def _reason_required(request: Mapping[str, Any]) -> list[Problem]:
    if request.get("reason"):
        return []
    return [("reason", msg("a decline reason code is required"))]


def _onward_agency_required(request: Mapping[str, Any]) -> list[Problem]:
    if not request.get("onward_agency"):
        return [("onward_agency", msg("the next agency is required for referred_onward"))]
    return []


def _no_onward_agency(request: Mapping[str, Any]) -> list[Problem]:
    if request.get("onward_agency"):
        return [("onward_agency", msg("only allowed with outcome referred_onward"))]
    return []


def _no_reason(request: Mapping[str, Any]) -> list[Problem]:
    if request.get("reason"):
        return [("reason", msg("a reason code is only taken with outcome declined"))]
    return []


def _all(*guards: Guard) -> Guard:
    def check(request: Mapping[str, Any]) -> list[Problem]:
        return [problem for guard in guards for problem in guard(request)]

    return check


@dataclass(frozen=True)
class Transition:
    """What an action does from one state, who may do it, and what it must carry."""

    to: str
    party: Party
    scope: str
    guard: Guard | None = None


def _close(party: Party, scope: str, guard: Guard) -> Transition:
    return Transition(CLOSED, party, scope, guard)


_PLAIN_CLOSE = _all(_no_reason, _no_onward_agency)

TRANSITIONS: dict[tuple[str, str], Transition] = {
    (REFERRED, "assess"): Transition(ASSESSED, Party.RECEIVER, scopes.ASSESS),
    (ASSESSED, "serve"): Transition(SERVED, Party.RECEIVER, scopes.SERVE),
    (SERVED, "record_service"): Transition(SERVED, Party.RECEIVER, scopes.SERVE),
    (SERVED, "close:completed"): _close(Party.RECEIVER, scopes.CLOSE, _PLAIN_CLOSE),
    **{
        (state, "close:declined"): _close(
            Party.RECEIVER, scopes.CLOSE, _all(_reason_required, _no_onward_agency)
        )
        for state in (REFERRED, ASSESSED)
    },
    **{
        (state, "close:withdrawn"): _close(Party.SENDER, scopes.WRITE, _PLAIN_CLOSE)
        for state in (REFERRED, ASSESSED)
    },
    **{
        (state, f"close:{outcome}"): _close(Party.RECEIVER, scopes.CLOSE, _PLAIN_CLOSE)
        for state in OPEN_STATUSES
        for outcome in ("unreachable", "deceased")
    },
    **{
        (state, "close:referred_onward"): _close(
            Party.RECEIVER, scopes.CLOSE, _all(_onward_agency_required, _no_reason)
        )
        for state in (ASSESSED, SERVED)
    },
    **{
        (state, WITHDRAW_CONSENT): Transition(CLOSED, Party.EITHER, scopes.WRITE, _PLAIN_CLOSE)
        for state in OPEN_STATUSES
    },
}

# The actions outside the transition table: a create has no state before it, and a note
# changes none (either party, in any state).
CREATE = "create"
ADD_NOTE = "add_note"
NOTE_PARTY = Party.EITHER
NOTE_SCOPE = scopes.WRITE

ACTIONS = tuple(sorted({action for _, action in TRANSITIONS}))


# ---- the event vocabulary -------------------------------------------------------------------


@dataclass(frozen=True)
class ActionNames:
    """The names one action is recorded under, all derived from the action's own: its
    history row's action, its audit entry's action and its event's type (CONTRACT §6)."""

    history: str
    audit: str
    event: str


# What each verb announces once done; every close outcome is announced as `referral.closed`.
_DONE = {
    CREATE: "created",
    "assess": "assessed",
    "serve": "served",
    "record_service": "service_recorded",
    "close": "closed",
    ADD_NOTE: "note_added",
}


def _names(action: str) -> ActionNames:
    if action == WITHDRAW_CONSENT:
        # Audited and announced as a consent withdrawal, not as a plain close (issue 4).
        return ActionNames(action, f"referral.{CONSENT_WITHDRAWN}", f"referral.{CONSENT_WITHDRAWN}")
    verb = action.split(":", 1)[0]
    return ActionNames(
        history=action,
        audit=f"referral.{action.replace(':', '.')}",
        event=f"referral.{_DONE[verb]}",
    )


NAMES: dict[str, ActionNames] = {action: _names(action) for action in (CREATE, ADD_NOTE, *ACTIONS)}
EVENT_TYPES = tuple(sorted({names.event for names in NAMES.values()}))


class Refusal(Exception):
    """Why an action cannot happen: `kind` is 'party', 'scope', 'state' or 'guard'."""

    def __init__(
        self, kind: str, detail: str | Message, problems: list[Problem] | None = None
    ) -> None:
        super().__init__(str(detail))
        self.kind = kind
        self.detail = detail
        self.problems = problems or []


# How an action is named in a sentence (codes in the Indonesian translations).
_ACTION_PHRASES = {
    "assess": N_("assess"),
    "serve": N_("serve"),
    "record_service": N_("record_service"),
    "close:completed": N_("close as completed"),
    "close:declined": N_("close as declined"),
    "close:withdrawn": N_("close as withdrawn"),
    "close:unreachable": N_("close as unreachable"),
    "close:deceased": N_("close as deceased"),
    "close:referred_onward": N_("close as referred_onward"),
    WITHDRAW_CONSENT: N_("close as consent_withdrawn"),
}


def _phrase(action: str) -> Message:
    return Message(_ACTION_PHRASES.get(action, action.replace(":", " as ")))


def _rules_for(action: str) -> list[Transition]:
    return [t for (_, a), t in TRANSITIONS.items() if a == action]


def decide(
    state: str,
    action: str,
    *,
    party: Party,
    granted: frozenset[str],
    request: Mapping[str, Any] | None = None,
) -> Transition:
    """The transition for `action` from `state` by `party`, or a Refusal saying why not."""
    rules = _rules_for(action)
    if not rules:
        raise Refusal("state", msg("unknown action {action}", action=action))
    # Who may act does not depend on the state, so it is answered first.
    allowed_party = rules[0].party
    if allowed_party is not Party.EITHER and allowed_party is not party:
        only = (
            msg("only the sender agency may {action}", action=_phrase(action))
            if allowed_party is Party.SENDER
            else msg("only the receiver agency may {action}", action=_phrase(action))
        )
        raise Refusal("party", only)
    if rules[0].scope not in granted:
        raise Refusal("scope", rules[0].scope)
    transition = TRANSITIONS.get((state, action))
    if transition is None:
        raise Refusal(
            "state",
            msg(
                "cannot {action} a referral that is {status}",
                action=_phrase(action),
                status=state,
            ),
        )
    if transition.guard is not None:
        problems = transition.guard(request or {})
        if problems:
            raise Refusal(
                "guard", join("; ", [join(": ", [f, p]) for f, p in problems]), problems
            )
    return transition


def allowed_from(action: str) -> tuple[str, ...]:
    """States from which an action is legal (for documentation and tests)."""
    return tuple(state for (state, a) in TRANSITIONS if a == action)


def scopes_of(action_prefix: str) -> tuple[str, ...]:
    """The scopes that actions named `action_prefix` or `action_prefix:...` demand, each once
    (`close` -> the scopes of every close outcome): what the API documents for the route."""
    return tuple(
        dict.fromkeys(
            t.scope
            for (_, action), t in TRANSITIONS.items()
            if action == action_prefix or action.startswith(f"{action_prefix}:")
        )
    )
