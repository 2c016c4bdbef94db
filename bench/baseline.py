"""The yardstick: the referral service a team would write from the FastAPI and SQLModel tutorials.

It does the same database work as Rujukan's hot paths over the same `referral` and
`referral_history` tables (and their indexes), and nothing else: no authentication, no
validation beyond the types, no encryption, audit trail, outbox or idempotency.

    BASELINE_DATABASE_URL=sqlite:///var/bench/bench.db uvicorn bench.baseline:app --workers 2
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy import JSON, Column, and_, or_
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

DATABASE_URL = os.environ.get("BASELINE_DATABASE_URL", "sqlite:///var/bench/bench.db")
connect_args = {"check_same_thread": False} if DATABASE_URL.startswith("sqlite") else {}
engine = create_engine(DATABASE_URL, connect_args=connect_args)


class Referral(SQLModel, table=True):
    __tablename__ = "referral"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    reference: str
    status: str = "referred"
    from_agency: str
    to_agency: str
    protected_identity: bool = False
    subject_sealed: str
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    kemenham_groups: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    case_types: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    urgency: str
    summary_sealed: str
    consent: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    assessment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_by_client: str = "baseline"
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    version: int = 1


class ReferralHistory(SQLModel, table=True):
    __tablename__ = "referral_history"

    id: int | None = Field(default=None, primary_key=True)
    referral_id: uuid.UUID = Field(foreign_key="referral.id")
    action: str
    from_status: str | None = None
    to_status: str
    actor_agency: str
    actor_client: str = "baseline"
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ReferralCreate(SQLModel):
    from_agency: str
    to_agency: str
    subject: dict[str, Any]
    protected_identity: bool = False
    groups: list[str] = []
    kemenham_groups: list[str] = []
    case_types: list[str] = []
    urgency: str
    summary: str
    consent: dict[str, Any]


class ReferralPublic(SQLModel):
    id: uuid.UUID
    reference: str
    status: str
    from_agency: str
    to_agency: str
    protected_identity: bool
    subject_sealed: str
    groups: list[str]
    kemenham_groups: list[str]
    case_types: list[str]
    urgency: str
    summary_sealed: str
    consent: dict[str, Any]
    assessment: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    version: int


class ReferralsPage(SQLModel):
    items: list[ReferralPublic]
    next_cursor: str | None


class AssessIn(SQLModel):
    needs: list[str]
    approach: str
    service_unit: str
    notes: str | None = None


def get_session():
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

app = FastAPI()


@app.post("/referrals", response_model=ReferralPublic, status_code=201)
def create_referral(body: ReferralCreate, session: SessionDep):
    referral = Referral(
        reference=f"B-{uuid.uuid4().hex[:20]}",
        from_agency=body.from_agency,
        to_agency=body.to_agency,
        protected_identity=body.protected_identity,
        subject_sealed=json.dumps(body.subject),
        groups=body.groups,
        kemenham_groups=body.kemenham_groups,
        case_types=body.case_types,
        urgency=body.urgency,
        summary_sealed=body.summary,
        consent=body.consent,
    )
    session.add(referral)
    session.add(
        ReferralHistory(
            referral_id=referral.id,
            action="create",
            to_status="referred",
            actor_agency=body.from_agency,
        )
    )
    session.commit()
    session.refresh(referral)
    return referral


@app.get("/referrals/{referral_id}", response_model=ReferralPublic)
def read_referral(referral_id: uuid.UUID, session: SessionDep):
    referral = session.get(Referral, referral_id)
    if not referral:
        raise HTTPException(status_code=404, detail="Referral not found")
    return referral


@app.get("/referrals", response_model=ReferralsPage)
def read_referrals(
    session: SessionDep,
    to_agency: str,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
):
    statement = select(Referral).where(Referral.to_agency == to_agency)
    if status:
        statement = statement.where(Referral.status == status)
    if cursor:
        created, _, last_id = cursor.rpartition("|")
        created_at, rid = datetime.fromisoformat(created), uuid.UUID(last_id)
        statement = statement.where(
            or_(
                col(Referral.created_at) < created_at,
                and_(col(Referral.created_at) == created_at, col(Referral.id) < rid),
            )
        )
    statement = statement.order_by(col(Referral.created_at).desc(), col(Referral.id).desc())
    statement = statement.limit(limit)
    items = session.exec(statement).all()
    next_cursor = None
    if len(items) == limit:
        last = items[-1]
        next_cursor = f"{last.created_at.isoformat()}|{last.id}"
    # As the tutorial writes it: validation reads each row into a ReferralPublic.
    return ReferralsPage(items=items, next_cursor=next_cursor)  # type: ignore[arg-type]


@app.post("/referrals/{referral_id}/assess", response_model=ReferralPublic)
def assess_referral(referral_id: uuid.UUID, body: AssessIn, session: SessionDep):
    referral = session.get(Referral, referral_id)
    if not referral:
        raise HTTPException(status_code=404, detail="Referral not found")
    if referral.status != "referred":
        raise HTTPException(status_code=409, detail="Referral is not in state referred")
    referral.status = "assessed"
    referral.assessment = {
        "needs": body.needs,
        "approach": body.approach,
        "service_unit": body.service_unit,
    }
    referral.version += 1
    referral.updated_at = datetime.now(UTC)
    session.add(referral)
    session.add(
        ReferralHistory(
            referral_id=referral.id,
            action="assess",
            from_status="referred",
            to_status="assessed",
            actor_agency=referral.to_agency,
        )
    )
    session.commit()
    session.refresh(referral)
    return referral
