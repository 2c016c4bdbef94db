"""The referral workflow as a model: Hypothesis drives the HTTP API with three agencies.

Each step is one request by one agency: a create, an action (by the right or the wrong party,
with a fresh, stale or missing ETag), a note, a withdrawal, an onward referral. The model
predicts the answer from the contract's transition table; after every step the service must
agree with the model: each referral's status and version, its history (one row per successful
action), the audit chain (verified entry by entry as it grows), and isolation (a referral is in
no list of, and 404 to, an agency that is not a party). No answer may be a 5xx.

RUJUKAN_MODEL_EXAMPLES and RUJUKAN_MODEL_STEPS bound the run (`make fuzz` raises them).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text

from service.audit import trail
from service.audit.models import AuditEntry
from service.context import ServiceContext
from service.referrals import workflow
from tests.support import (
    AGENCIES,
    Api,
    Party,
    assess_body,
    referral_body,
    service_body,
    writer_session,
)
from tests.support.databases import MUTABLE_TABLES
from tests.support.hostile import EXTREME_DAYS, EXTREME_TIMES, with_nul

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("RUJUKAN_MODEL_EXAMPLES", "10"))
STEPS = int(os.environ.get("RUJUKAN_MODEL_STEPS", "20"))

# What each request path does, as the workflow table names it.
CLOSE_OUTCOMES = (
    "completed", "declined", "withdrawn", "unreachable", "deceased", "referred_onward"
)
ACTIONS = ("assess", "serve", "record_service", "consent_withdrawal") + tuple(
    f"close:{o}" for o in CLOSE_OUTCOMES
)
ETAGS = ("fresh", "stale", "missing")


@dataclass
class Modelled:
    """What the model knows of one referral."""

    id: str
    sender: str
    receiver: str
    status: str = workflow.REFERRED
    version: int = 1
    history: list[str] = field(default_factory=lambda: ["create"])

    def parties(self) -> set[str]:
        return {self.sender, self.receiver}


def event_of(history_action: str) -> str:
    """The event type a history row's action writes to the outbox."""
    return workflow.NAMES[history_action].event


def _workflow_action(action: str) -> str:
    return workflow.WITHDRAW_CONSENT if action == "consent_withdrawal" else action


def expected_status(
    ref: Modelled, action: str, actor: str, etag: str, onward: str | None
) -> int:
    """The answer the contract gives, in the order the service checks."""
    if actor not in ref.parties():
        return 404
    if etag == "missing":
        return 428
    name = _workflow_action(action)
    rules = [t for (_, a), t in workflow.TRANSITIONS.items() if a == name]
    party = workflow.Party.SENDER if actor == ref.sender else workflow.Party.RECEIVER
    if rules[0].party not in (workflow.Party.EITHER, party):
        return 403
    if (ref.status, name) not in workflow.TRANSITIONS:
        return 409
    if etag == "stale":
        return 412
    if onward is not None and onward == actor:
        return 422
    return 200


def _request(action: str, receiver: str, onward: str | None) -> tuple[str, dict[str, Any]]:
    """(path suffix, a body valid for the action)."""
    if action == "assess":
        return "assess", assess_body(receiver)
    if action == "serve":
        return "serve", service_body(receiver)
    if action == "record_service":
        return "services", service_body(receiver)
    if action == "consent_withdrawal":
        withdrawn = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        return "consent-withdrawal", {"withdrawn_at": withdrawn.isoformat()}
    outcome = action.split(":", 1)[1]
    body: dict[str, Any] = {"outcome": outcome, "notes": "Closed in the model test."}
    if outcome == "declined":
        body["reason"] = "OUTSIDE_MANDATE"
    if outcome == "referred_onward":
        body["onward_agency"] = onward
    return "close", body


# Writes whose body breaks a rule every field follows (no NUL character, no time at the ends of
# the calendar): (action, body field, strategy of the bad value).
HOSTILE_FIELDS = (
    ("create", ("external_ref",), with_nul()),
    ("create", ("summary",), with_nul()),
    ("create", ("subject", "full_name"), with_nul()),
    ("create", ("consent", "obtained_at"), st.sampled_from(EXTREME_TIMES)),
    ("create", ("subject", "birth_date"), st.sampled_from(EXTREME_DAYS)),
    ("note", ("text",), with_nul()),
    ("assess", ("notes",), with_nul()),
    ("serve", ("started_at",), st.sampled_from(EXTREME_TIMES)),
    ("consent_withdrawal", ("withdrawn_at",), st.sampled_from(EXTREME_TIMES)),
    ("close:unreachable", ("notes",), with_nul()),
)


class WorkflowModel(RuleBasedStateMachine):
    """Three agencies acting on referrals; the model says what must happen."""

    http: TestClient
    parties: dict[str, Party]
    ctx: ServiceContext
    steps = 0
    successes = 0

    referrals = Bundle("referrals")

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, Modelled] = {}
        # Referrals a step wrote to: read back in full after the step (lists cover the rest).
        self.touched: set[str] = set()
        # Each agency's event feed as read so far, and where it stopped.
        self.feed: dict[str, list[dict[str, Any]]] = {code: [] for code in AGENCIES}
        self.cursor: dict[str, str | None] = dict.fromkeys(AGENCIES)
        self.api = {code: Api(self.http, self.parties[code]) for code in AGENCIES}
        with writer_session(self.ctx.db) as session:
            session.execute(text("UPDATE referral SET parent_id = NULL"))
            for table in MUTABLE_TABLES:
                session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
            session.commit()
            last = session.execute(
                select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)
            ).scalar_one_or_none()
            self.audit_id, self.audit_hash = (last.id, last.hash) if last else (0, trail.GENESIS)

    def _send(self, response) -> Any:  # type: ignore[no-untyped-def]
        WorkflowModel.steps += 1
        assert response.status_code < 500, response.text
        return response

    @rule(target=referrals, sender=st.sampled_from(AGENCIES), receiver=st.sampled_from(AGENCIES))
    def create(self, sender: str, receiver: str):  # type: ignore[no-untyped-def]
        response = self._send(self.api[sender].create(referral_body(receiver)))
        if sender == receiver:
            assert response.status_code == 422, response.text
            return None
        assert response.status_code == 201, response.text
        WorkflowModel.successes += 1
        ref = Modelled(response.json()["id"], sender, receiver)
        self.model[ref.id] = ref
        self.touched.add(ref.id)
        return ref

    @precondition(lambda self: self.model)
    @rule(
        ref=referrals,
        action=st.sampled_from(ACTIONS),
        actor=st.sampled_from(AGENCIES),
        etag=st.sampled_from(ETAGS),
        onward=st.sampled_from(AGENCIES),
    )
    def act(self, ref: Modelled | None, action: str, actor: str, etag: str, onward: str) -> None:
        if ref is None:
            return
        ref = self.model[ref.id]
        self.touched.add(ref.id)
        onward_to = onward if action == "close:referred_onward" else None
        suffix, body = _request(action, ref.receiver, onward_to)
        headers = self.api[actor].headers()
        if etag == "fresh":
            headers["If-Match"] = f'"{ref.version}"'
        elif etag == "stale":
            headers["If-Match"] = f'"{ref.version - 1}"'
        response = self._send(
            self.http.post(f"/v1/referrals/{ref.id}/{suffix}", json=body, headers=headers)
        )
        expected = expected_status(ref, action, actor, etag, onward_to)
        assert response.status_code == expected, (action, actor, etag, ref, response.text)
        if expected != 200:
            assert response.headers["content-type"].startswith("application/problem+json")
            if expected == 409:
                assert response.json()["current_status"] == ref.status
            return
        WorkflowModel.successes += 1
        name = _workflow_action(action)
        ref.status = workflow.TRANSITIONS[(ref.status, name)].to
        ref.version += 1
        ref.history.append(name)
        read = response.json()
        assert read["status"] == ref.status and read["version"] == ref.version
        assert response.headers["ETag"] == f'"{ref.version}"'
        if onward_to is not None:
            child_id = read["closure"]["onward_referral_id"]
            assert child_id and child_id not in self.model
            self.model[child_id] = Modelled(child_id, actor, onward_to)
            self.touched.add(child_id)

    @precondition(lambda self: self.model)
    @rule(
        ref=referrals,
        actor=st.sampled_from(AGENCIES),
        etag=st.sampled_from(ETAGS),
    )
    def note(self, ref: Modelled | None, actor: str, etag: str) -> None:
        if ref is None:
            return
        ref = self.model[ref.id]
        self.touched.add(ref.id)
        headers = self.api[actor].headers()
        if etag == "fresh":
            headers["If-Match"] = f'"{ref.version}"'
        elif etag == "stale":
            headers["If-Match"] = f'"{ref.version - 1}"'
        response = self._send(
            self.http.post(
                f"/v1/referrals/{ref.id}/notes", json={"text": "A note."}, headers=headers
            )
        )
        if actor not in ref.parties():
            expected = 404
        elif etag == "stale":
            expected = 412
        else:
            expected = 201
        assert response.status_code == expected, (actor, etag, ref, response.text)
        if expected == 201:
            WorkflowModel.successes += 1
            ref.history.append("add_note")

    @precondition(lambda self: self.model)
    @rule(
        ref=referrals,
        actor=st.sampled_from(AGENCIES),
        hostile=st.sampled_from(HOSTILE_FIELDS).flatmap(
            lambda h: st.tuples(st.just(h[0]), st.just(h[1]), h[2])
        ),
    )
    def hostile_write(
        self, ref: Modelled | None, actor: str, hostile: tuple[str, tuple[str, ...], str]
    ) -> None:
        """A create or an action whose body holds a NUL character or a time at the end of the
        calendar: 422 to anyone (before any lookup), and nothing changes."""
        if ref is None:
            return
        ref = self.model[ref.id]
        self.touched.add(ref.id)
        action, field_path, value = hostile
        if action == "create":
            # To the referral's other party, so that only the bad field is wrong.
            other = ref.receiver if actor != ref.receiver else ref.sender
            url, body = "/v1/referrals", referral_body(other)
        elif action == "note":
            url, body = f"/v1/referrals/{ref.id}/notes", {"text": "A note."}
        else:
            suffix, body = _request(action, ref.receiver, None)
            url = f"/v1/referrals/{ref.id}/{suffix}"
        if field_path == ("subject", "birth_date"):
            # Without a NIK, whose digits would have to agree with the birth date.
            body["subject"].pop("nik")
            body["subject"]["nik_absent_reason"] = "unknown"
        target = body
        for key in field_path[:-1]:
            target = target[key]
        target[field_path[-1]] = value
        headers = {**self.api[actor].headers(), "If-Match": f'"{ref.version}"'}
        response = self._send(self.http.post(url, json=body, headers=headers))
        assert response.status_code == 422, (action, field_path, response.text)
        locations = [e["loc"] for e in response.json()["errors"]]
        assert ["body", *field_path] in locations, (field_path, locations)

    @invariant()
    def lists_show_each_agency_exactly_its_referrals(self) -> None:
        for agency in AGENCIES:
            response = self._send(self.api[agency].list(limit=200))
            assert response.status_code == 200, response.text
            listed = {item["id"]: item for item in response.json()["items"]}
            mine = {rid for rid, ref in self.model.items() if agency in ref.parties()}
            assert set(listed) == mine, agency
            for rid in mine:
                ref = self.model[rid]
                assert (listed[rid]["status"], listed[rid]["version"]) == (
                    ref.status,
                    ref.version,
                ), ref

    @invariant()
    def each_touched_referral_reads_as_modelled_and_exists_only_for_its_parties(self) -> None:
        for rid in sorted(self.touched):
            self._check_one(self.model[rid])
        self.touched.clear()

    def teardown(self) -> None:
        for ref in self.model.values():
            self._check_one(ref)

    def _check_one(self, ref: Modelled) -> None:
        outsider = next(a for a in AGENCIES if a not in ref.parties())
        assert self._send(self.api[outsider].get(ref.id)).status_code == 404
        assert self._send(self.api[outsider].history(ref.id)).status_code == 404
        for party in ref.parties():
            read = self._send(self.api[party].get(ref.id))
            assert read.status_code == 200, read.text
            assert (read.json()["status"], read.headers["ETag"]) == (
                ref.status,
                f'"{ref.version}"',
            ), ref
        history = self._send(self.api[ref.receiver].history(ref.id))
        assert history.status_code == 200, history.text
        assert [h["action"] for h in history.json()] == ref.history, ref

    @invariant()
    def each_feed_carries_each_action_of_its_referrals_once_in_order(self) -> None:
        for agency in AGENCIES:
            while True:
                params: dict[str, Any] = {"limit": 500}
                if self.cursor[agency]:
                    params["after"] = self.cursor[agency]
                page = self._send(
                    self.http.get("/v1/events", params=params, headers=self.api[agency].headers())
                )
                assert page.status_code == 200, page.text
                self.feed[agency].extend(page.json()["items"])
                self.cursor[agency] = page.json()["next_cursor"]
                if not page.json()["has_more"]:
                    break
            ids = [e["id"] for e in self.feed[agency]]
            assert len(ids) == len(set(ids)), f"an event reached {agency} twice"
            by_referral: dict[str, list[str]] = {}
            for event in self.feed[agency]:
                ref = self.model.get(event["referral_id"])
                assert ref is not None and agency in ref.parties(), (agency, event)
                by_referral.setdefault(ref.id, []).append(event["type"])
            for ref in self.model.values():
                if agency in ref.parties():
                    expected = [event_of(a) for a in ref.history]
                    assert by_referral.get(ref.id, []) == expected, (agency, ref)

    @invariant()
    def audit_chain_grows_linearly_and_verifies(self) -> None:
        with self.ctx.db.reader() as session:
            new = session.execute(
                select(AuditEntry).where(AuditEntry.id > self.audit_id).order_by(AuditEntry.id)
            ).scalars()
            for entry in new:
                assert entry.id == self.audit_id + 1, "no gap in the audit trail"
                assert entry.prev_hash == self.audit_hash, f"entry {entry.id} forks the chain"
                assert trail.entry_hash(entry) == entry.hash, f"entry {entry.id} was altered"
                self.audit_id, self.audit_hash = entry.id, entry.hash


def test_the_service_behaves_as_the_workflow_model(
    ctx: ServiceContext, http: TestClient, parties: dict[str, Party], clean: None
) -> None:
    WorkflowModel.http, WorkflowModel.parties, WorkflowModel.ctx = http, parties, ctx
    WorkflowModel.steps = WorkflowModel.successes = 0
    run_state_machine_as_test(
        WorkflowModel,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            derandomize=os.environ.get("RUJUKAN_FUZZ_RANDOM") is None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    with ctx.db.reader() as session:
        checked, bad, reason = trail.verify_chain(session)
    assert bad is None, f"audit entry {bad}: {reason}"
    print(f"\nworkflow model: {WorkflowModel.steps} requests, {WorkflowModel.successes} "
          f"successful writes, {checked} audit entries verified")
    assert WorkflowModel.successes > EXAMPLES
