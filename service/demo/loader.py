"""Fill an empty database with demo referrals, through the referral service itself.

Every referral is created and moved through its states by the same service functions the API
calls, so encryption, history, the audit trail and the agreement check are all real. Only
afterwards does `_backdate_for_demo` move the referral's own timestamps (its history, its
creation, its deadline) back over the past months, so that statistics and charts have a
spread to show. The audit trail keeps the real time of loading: it is never rewritten.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import col

from service.agreements.service import seed_dev_agreements
from service.auth.principal import Principal
from service.auth.scopes import ALL_SCOPES
from service.context import ServiceContext
from service.db.types import utcnow
from service.db.writes import Writes
from service.referrals import actions, create
from service.referrals.models import DeliveredService, Referral, ReferralHistory
from service.referrals.schemas import (
    AssessIn,
    CloseIn,
    ConsentWithdrawalIn,
    ReferralCreate,
    ServiceIn,
)

DEMO_CLIENT = "demo-loader"
DEFAULT_COUNT = 120
DEFAULT_MONTHS = 6

GIVEN_FEMALE = ("Ayu", "Sri", "Dewi", "Rina", "Wulan", "Siti", "Lestari", "Indah", "Nur", "Putri")
GIVEN_MALE = ("Budi", "Agus", "Joko", "Rizky", "Hendra", "Dimas", "Yusuf", "Bayu", "Eko", "Arif")
FAMILY = (
    "Santoso",
    "Wijaya",
    "Hidayat",
    "Saputra",
    "Kurniawan",
    "Rahmawati",
    "Pratama",
    "Susanti",
    "Nugroho",
    "Permata",
)
# Real province, regency and district codes (so the NIK is well-formed) with invented villages.
PLACES = (
    ("317101", "31.71.01", "Kel. Sukamaju Contoh, Gambir, Jakarta Pusat"),
    ("327301", "32.73.01", "Desa Mekarsari Contoh, Bandung"),
    ("357801", "35.78.01", "Kel. Sidomulyo Contoh, Surabaya"),
    ("347101", "34.71.01", "Kel. Suryodiningratan Contoh, Yogyakarta"),
    ("737101", "73.71.01", "Kel. Tamalanrea Contoh, Makassar"),
    ("127101", "12.71.01", "Kel. Sei Sikambing Contoh, Medan"),
)
# (sender, receiver, weight, groups, kemenham groups, case types)
FLOWS: tuple[tuple[str, str, int, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "LPSK",
        "KEMENSOS",
        5,
        ("KORBAN_KEKERASAN", "PEREMPUAN_RENTAN"),
        (),
        ("TPPO", "KEKERASAN_SEKSUAL", "KEKERASAN_FISIK"),
    ),
    (
        "KEMENHAM",
        "KEMENSOS",
        3,
        ("KORBAN_KEKERASAN", "FAKIR_MISKIN"),
        ("KORBAN_PELANGGARAN_HAM_BERAT_MASA_LALU", "MASYARAKAT_DAERAH_KONFLIK"),
        ("PELANGGARAN_HAM_BERAT", "KONFLIK_SOSIAL"),
    ),
    (
        "KEMENSOS",
        "LPSK",
        3,
        ("KORBAN_KEKERASAN", "NAPZA_HIV"),
        (),
        ("TPPO", "TERORISME", "KEKERASAN_SEKSUAL"),
    ),
    (
        "KEMENHAM",
        "LPSK",
        2,
        ("KORBAN_KEKERASAN",),
        ("SAKSI_KORBAN_PELANGGARAN_HAM",),
        ("PELANGGARAN_HAM_BERAT", "PENYIKSAAN"),
    ),
    ("LPSK", "KEMENHAM", 1, ("KORBAN_KEKERASAN",), ("PEMBELA_HAM",), ("PENYIKSAAN",)),
    ("KEMENSOS", "KEMENHAM", 1, ("BERMASALAH_SOSIAL",), ("PEKERJA_MIGRAN",), ("EKSPLOITASI",)),
)
# What each receiver assesses and delivers: (needs, approach, unit, first service).
CARE = {
    "KEMENSOS": (
        ["REHABILITASI_SOSIAL", "DUKUNGAN_PSIKOSOSIAL"],
        "residential",
        ("SENTRA_HANDAYANI", "SENTRA_MULYA_JAYA", "SENTRA_TERPADU_KARTINI"),
        "REHABILITASI_SOSIAL",
    ),
    "LPSK": (
        ["PERLINDUNGAN_FISIK", "BANTUAN_PSIKOLOGIS"],
        "residential",
        ("LPSK_RUMAH_AMAN", "LPSK_LAYANAN_MEDIS_PSIKOLOGIS"),
        "PERLINDUNGAN_FISIK",
    ),
    "KEMENHAM": (
        ["PEMULIHAN_HAK_KORBAN"],
        "community",
        ("KEMENHAM_PELAYANAN_KOMUNIKASI_MASYARAKAT",),
        "PEMULIHAN_HAK_KORBAN",
    ),
}
# Where each referral is meant to end, with its weight; recent referrals stop earlier.
ENDINGS = (
    ("completed", 34),
    ("served", 14),
    ("assessed", 9),
    ("referred", 9),
    ("declined", 9),
    ("withdrawn", 5),
    ("unreachable", 6),
    ("deceased", 2),
    ("referred_onward", 7),
    ("consent_withdrawn", 3),
)
DECLINE_REASONS = ("OUTSIDE_MANDATE", "NOT_ELIGIBLE", "CAPACITY_FULL", "SERVED_ELSEWHERE")


class DemoError(RuntimeError):
    """The demo data cannot be loaded here."""


@dataclass
class Plan:
    """One referral's intended story, in hours after its creation."""

    created: dt.datetime
    assess_after: float
    serve_after: float
    close_after: float
    ending: str
    times: list[dt.datetime] = field(default_factory=list)


def _principal(agency: str) -> Principal:
    return Principal(
        client_id=DEMO_CLIENT,
        agency=agency,
        scopes=frozenset(ALL_SCOPES),
        token_id="demo",  # noqa: S106 - a token id, not a secret
        issuer="rujukan-demo",
    )


def _subject(rng: random.Random, serial: int) -> dict[str, Any]:
    sex = rng.choice(("female", "male"))
    given = rng.choice(GIVEN_FEMALE if sex == "female" else GIVEN_MALE)
    birth = dt.date(1955, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 45))
    area, region, address = rng.choice(PLACES)
    day = birth.day + (40 if sex == "female" else 0)
    return {
        "full_name": f"{given} {rng.choice(FAMILY)} (fiktif)",
        "nik": f"{area}{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial % 9999 + 1:04d}",
        "birth_date": birth.isoformat(),
        "sex": sex,
        "address": f"Jl. Contoh No. {rng.randint(1, 99)}, {address}",
        "region_code": region,
        "phone": f"+62 812 0000 {rng.randint(1000, 9999)}",
    }


def _hours(rng: random.Random, low: float, high: float) -> float:
    # Skewed toward the short end, as waiting times are; a few run long.
    return round(low + (high - low) * rng.random() ** 2, 2)


def _plan(rng: random.Random, now: dt.datetime, months: int, urgency: str) -> Plan:
    created = now - dt.timedelta(days=rng.uniform(1, months * 30.4), minutes=rng.randint(0, 600))
    first = {"emergency": (1, 48), "urgent": (6, 150), "routine": (24, 500)}[urgency]
    return Plan(
        created=created.replace(microsecond=0),
        assess_after=_hours(rng, *first),
        serve_after=_hours(rng, 12, 500),
        close_after=_hours(rng, 150, 2500),
        ending=rng.choices([e for e, _ in ENDINGS], [w for _, w in ENDINGS])[0],
    )


def _steps_possible(plan: Plan, now: dt.datetime) -> int:
    """How many of assess, serve, close fit before now."""
    marks = (
        plan.assess_after,
        plan.assess_after + plan.serve_after,
        plan.assess_after + plan.serve_after + plan.close_after,
    )
    return sum(1 for hours in marks if plan.created + dt.timedelta(hours=hours) < now)


def _backdate_for_demo(ctx: ServiceContext, referral_id: uuid.UUID, plan: Plan) -> None:
    """Demo only: move a referral's history and timestamps to the planned times, and set the
    deadline its current step would have had."""
    settings = ctx.settings

    def backdate(w: Writes) -> None:
        session = w.session
        row = session.get(Referral, referral_id)
        assert row is not None
        history = list(
            session.execute(
                select(ReferralHistory)
                .where(col(ReferralHistory.referral_id) == referral_id)
                .order_by(col(ReferralHistory.id))
            ).scalars()
        )
        times = plan.times[: len(history)]
        for entry, at in zip(history, times, strict=True):
            entry.occurred_at = at
        last = times[-1]
        due: dt.datetime | None
        if row.status == "referred":
            due = times[0] + dt.timedelta(hours=settings.sla_hours(row.urgency))
        elif row.status == "assessed":
            due = times[1] + dt.timedelta(hours=settings.sla_service_start_hours)
        elif row.status == "served":
            due = times[2] + dt.timedelta(hours=settings.sla_closure_hours)
        else:
            due = None
        changes: dict[str, Any] = {"created_at": times[0], "updated_at": last, "due_at": due}
        if row.assessment:
            changes["assessment"] = {**row.assessment, "assessed_at": times[1].isoformat()}
        if row.closed_at is not None:
            changes["closed_at"] = last
        session.execute(update(Referral).where(col(Referral.id) == referral_id).values(**changes))
        if len(times) > 2:
            session.execute(
                update(DeliveredService)
                .where(col(DeliveredService.referral_id) == referral_id)
                .values(recorded_at=times[2], started_at=times[2])
            )

    ctx.db.write(backdate)


def load_demo(
    ctx: ServiceContext,
    *,
    count: int = DEFAULT_COUNT,
    months: int = DEFAULT_MONTHS,
    seed: int = 2026,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Create `count` demo referrals spread over the last `months`; refuses a database that
    already holds referrals, and a prod one."""
    if not ctx.settings.is_dev:
        raise DemoError("demo data does not belong in a prod database (RUJUKAN_ENV=prod)")

    def begin(w: Writes) -> None:
        existing = w.session.execute(select(func.count()).select_from(Referral)).scalar_one()
        if existing:
            raise DemoError(
                f"the database already holds {existing} referrals; `rujukan demo` only fills "
                "an empty database"
            )
        seed_dev_agreements(w)

    ctx.db.write(begin)
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    now = dt.datetime.now(dt.UTC)
    weights = [flow[2] for flow in FLOWS]
    made = 0
    for serial in range(1, count + 1):
        sender, receiver, _, groups, kemenham_groups, case_types = rng.choices(FLOWS, weights)[0]
        urgency = rng.choices(("emergency", "urgent", "routine"), (2, 5, 3))[0]
        plan = _plan(rng, now, months, urgency)
        made += _tell(
            ctx,
            rng,
            plan,
            now,
            serial,
            sender,
            receiver,
            urgency,
            groups,
            kemenham_groups,
            case_types,
        )
        if serial % 20 == 0:
            say(f"{serial} of {count} stories loaded")
    return {"referrals": made, "months": months, "seed": seed}


def _tell(
    ctx: ServiceContext,
    rng: random.Random,
    plan: Plan,
    now: dt.datetime,
    serial: int,
    sender: str,
    receiver: str,
    urgency: str,
    groups: tuple[str, ...],
    kemenham_groups: tuple[str, ...],
    case_types: tuple[str, ...],
) -> int:
    """Create one referral and walk it toward its planned ending; the referrals made."""
    subject = _subject(rng, serial)
    body = ReferralCreate(
        to_agency=receiver,
        subject=subject,
        protected_identity=sender == "LPSK" or rng.random() < 0.2,
        groups=rng.sample(groups, k=rng.randint(1, len(groups))),
        kemenham_groups=rng.sample(kemenham_groups, k=min(1, len(kemenham_groups))),
        case_types=[rng.choice(case_types)],
        urgency=urgency,
        summary="[DEMO] Data fiktif untuk mencoba layanan Rujukan.",
        consent={
            "given": True,
            "obtained_at": (plan.created - dt.timedelta(days=1)).isoformat(),
            "method": rng.choice(("written", "verbal")),
            "obtained_by": f"Petugas {sender} (contoh)",
        },
    )
    created = create.create_referral(ctx, _principal(sender), body, None).body
    rid = uuid.UUID(created["id"])
    to, by = _principal(receiver), _principal(sender)
    plan.times = [plan.created]
    version = 1
    possible = _steps_possible(plan, now)
    ending = plan.ending
    needs, approach, units, first_service = CARE[receiver]
    unit = rng.choice(units)

    def at(hours: float) -> dt.datetime:
        return plan.created + dt.timedelta(hours=hours)

    def etag() -> frozenset[int]:
        return frozenset({version})

    def close(outcome: str, after: float, actor: Principal = to, **extra: Any) -> int:
        """Close the referral; the number of onward referrals this created (0 or 1)."""
        nonlocal version
        if outcome == "consent_withdrawn":
            read = actions.withdraw_consent(
                ctx, actor, rid, ConsentWithdrawalIn(withdrawn_at=at(after)), etag()
            )
        else:
            read = actions.close_referral(
                ctx, actor, rid, CloseIn(outcome=outcome, **extra), etag()
            )
        version = read.version
        plan.times.append(at(after))
        if read.closure and read.closure.onward_referral_id:
            child = Plan(plan.created, 0, 0, 0, "referred", times=[at(after)])
            _backdate_for_demo(ctx, read.closure.onward_referral_id, child)
            return 1
        return 0

    made = 1
    early = {"declined": 1, "withdrawn": 1, "unreachable": 1, "consent_withdrawn": 1}
    if ending in early and possible >= 1 and rng.random() < 0.5:
        # Closed before any assessment.
        extra: dict[str, Any] = (
            {"reason": rng.choice(DECLINE_REASONS)} if ending == "declined" else {}
        )
        actor = by if ending == "withdrawn" else to
        made += close(ending, plan.assess_after, actor, **extra)
        _backdate_for_demo(ctx, rid, plan)
        return made
    if possible >= 1 and ending != "referred":
        read = actions.assess_referral(
            ctx,
            to,
            rid,
            AssessIn(needs=needs, approach=approach, service_unit=unit),
            etag(),
        )
        version = read.version
        plan.times.append(at(plan.assess_after))
        served_at = plan.assess_after + plan.serve_after
        if ending in ("declined", "withdrawn", "consent_withdrawn") or (
            ending == "referred_onward" and rng.random() < 0.5
        ):
            if possible >= 2:
                extra = {}
                if ending == "declined":
                    extra = {"reason": rng.choice(DECLINE_REASONS)}
                if ending == "referred_onward":
                    extra = {"onward_agency": _onward(receiver, sender, rng)}
                actor = by if ending == "withdrawn" else to
                made += close(ending, served_at, actor, **extra)
        elif possible >= 2 and ending != "assessed":
            read = actions.record_service(
                ctx,
                to,
                rid,
                # Started now, as the service's history requires; moved back with the rest
                # of the referral's times below.
                ServiceIn(service_type=first_service, service_unit=unit, started_at=utcnow()),
                etag(),
                action="serve",
            )
            version = read.version
            plan.times.append(at(served_at))
            if possible >= 3 and ending not in ("served",):
                closing = served_at + plan.close_after
                outcome = (
                    ending
                    if ending in ("unreachable", "deceased", "referred_onward")
                    else "completed"
                )
                extra = (
                    {"onward_agency": _onward(receiver, sender, rng)}
                    if outcome == "referred_onward"
                    else {}
                )
                made += close(outcome, closing, **extra)
    _backdate_for_demo(ctx, rid, plan)
    return made


def _onward(receiver: str, sender: str, rng: random.Random) -> str:
    others = [a for a in CARE if a not in (receiver,)]
    return rng.choice([a for a in others if a != sender] or others)
