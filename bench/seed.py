"""Bulk seeding of a migrated Rujukan database with realistic, openable referrals.

Every sealed field is bound to its row (`referral:<id>:<field>` is the AES-GCM associated
data), so ciphertexts cannot be shared between rows: each row is sealed with the real data
keyring, in a process pool, while the main process writes the previous chunk (SQLite:
executemany in one transaction with the journal off; PostgreSQL: COPY).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

AGENCIES = ("KEMENSOS", "LPSK", "KEMENHAM")
PAIRS = [(a, b) for a in AGENCIES for b in AGENCIES if a != b]
UNITS = {
    "KEMENSOS": "SENTRA_HANDAYANI",
    "LPSK": "LPSK_RUMAH_AMAN",
    "KEMENHAM": "KEMENHAM_PELAYANAN_KOMUNIKASI_MASYARAKAT",
}
# Seeded NIKs use other province codes than the benchmark's creates (31), so they never clash.
SEED_PROVINCES = ("11", "12", "13", "14", "15", "16", "17", "18", "19", "21")
GROUPS = ("KORBAN_KEKERASAN", "ANAK_RENTAN", "DISABILITAS", "PEREMPUAN_RENTAN", "NAPZA_HIV")
CASE_TYPES = ("TPPO", "KEKERASAN_FISIK", "KEKERASAN_PSIKIS", "KEKERASAN_SEKSUAL")
URGENCIES = ("emergency", "urgent", "routine")
# referred 40 %, assessed 20 %, served 20 %, closed 20 %
STATUS_BY_DECILE = ("referred",) * 4 + ("assessed",) * 2 + ("served",) * 2 + ("closed",) * 2
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SPAN = dt.timedelta(days=365)
CHUNK = 5000

COLUMNS = (
    "id", "reference", "status", "from_agency", "to_agency", "protected_identity",
    "subject_sealed", "nik_hash", "groups", "kemenham_groups", "case_types", "urgency",
    "summary_sealed", "consent", "external_ref", "assessment", "closure_outcome", "closed_at",
    "due_at", "created_by_client", "created_at", "updated_at", "version",
)  # fmt: skip


def nik_for(number: int, provinces: tuple[str, ...] = SEED_PROVINCES) -> str:
    """A structurally valid NIK (male, born 1990-08-05) unique for each number < 10**9."""
    serial = number % 9999 + 1
    rest = number // 9999
    district = rest % 99 + 1
    rest //= 99
    regency = rest % 99 + 1
    province = provinces[(rest // 99) % len(provinces)]
    return f"{province}{regency:02d}{district:02d}050890{serial:04d}"


def conninfo(url: str) -> str:
    """The SQLAlchemy URL of a PostgreSQL database as psycopg takes it (without `+psycopg`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True)
class Plan:
    """What one seed writes."""

    rows: int
    dialect: str
    data_key_file: str


_keyring: Any = None


def _init_worker(data_key_file: str) -> None:
    global _keyring
    from service.crypto import DataKeyring

    _keyring = DataKeyring.load(Path(data_key_file))


def _sqlite_time(value: dt.datetime | None) -> str | None:
    # The format SQLAlchemy's DateTime writes on SQLite (UTC, no zone).
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _identity(i: int, rng: random.Random) -> tuple[uuid.UUID, str, str, str]:
    """(id, from_agency, to_agency, status) of row `i`; draws the id from `rng`."""
    rid = uuid.UUID(int=rng.getrandbits(128), version=4)
    from_agency, to_agency = PAIRS[i % len(PAIRS)]
    return rid, from_agency, to_agency, STATUS_BY_DECILE[(i * 7) % 10]


def _row(i: int, rows: int, rng: random.Random) -> dict[str, Any]:
    ring = _keyring
    rid, from_agency, to_agency, status = _identity(i, rng)
    created = START + SPAN * (i / rows)
    nik = nik_for(i)
    protected = from_agency == "LPSK" and i % 3 == 0
    subject = {
        "full_name": f"Warga Uji {i:07d} Binti Contoh",
        "nik": nik,
        "birth_date": "1990-08-05",
        "sex": "male",
        "address": f"Jl. Melati No. {i % 200 + 1}, RT 0{i % 9 + 1}/RW 0{i % 7 + 1}, Jakarta Pusat",
        "region_code": "31.71.01",
        "phone": f"+62 812 {i % 10000:04d} {i // 10000 % 10000:04d}",
    }
    summary = (
        "Survivor referred for social rehabilitation and psychosocial support after "
        f"case {i}; family contact established, safe placement needed within the week."
    )
    version = 1
    assessment = None
    closure_outcome = closed_at = None
    due_at: dt.datetime | None = created + dt.timedelta(days=14)
    updated = created
    if status != "referred":
        version = 2
        due_at = None
        updated = created + dt.timedelta(days=2)
        assessment = {
            "needs": ["REHABILITASI_SOSIAL"],
            "approach": "residential",
            "service_unit": UNITS[to_agency],
            "assessed_at": updated.isoformat(),
        }
    if status == "served":
        version = 3
    if status == "closed":
        version = 3
        closure_outcome = "unreachable"
        closed_at = updated = created + dt.timedelta(days=10)
    return {
        "id": rid,
        "reference": f"RJK-2025-{i + 1:07d}",
        "status": status,
        "from_agency": from_agency,
        "to_agency": to_agency,
        "protected_identity": protected,
        "subject_sealed": ring.seal(json.dumps(subject), f"referral:{rid}:subject"),
        "nik_hash": ring.nik_index(nik),
        "groups": json.dumps([GROUPS[i % len(GROUPS)]]),
        "kemenham_groups": "[]",
        "case_types": json.dumps([CASE_TYPES[i % len(CASE_TYPES)]]),
        "urgency": URGENCIES[i % 3],
        "summary_sealed": ring.seal(summary, f"referral:{rid}:summary"),
        "consent": json.dumps(
            {
                "given": True,
                "obtained_at": created.isoformat(),
                "method": "written",
                "obtained_by": "Petugas",
                "purposes": ["REFERRAL", "ASSESSMENT", "SERVICE_DELIVERY"],
                "given_by": "subject",
            }
        ),
        "external_ref": None,
        "assessment": None if assessment is None else json.dumps(assessment),
        "closure_outcome": closure_outcome,
        "closed_at": closed_at,
        "due_at": due_at,
        "created_by_client": "bench-seed",
        "created_at": created,
        "updated_at": updated,
        "version": version,
    }


def _chunk(args: tuple[int, int, int, str]) -> list[tuple[Any, ...]]:
    start, end, rows, dialect = args
    rng = random.Random(start)  # noqa: S311 - ids for test data, not secrets
    out = []
    for i in range(start, end):
        r = _row(i, rows, rng)
        if dialect == "sqlite":
            r["id"] = r["id"].hex
            r["protected_identity"] = int(r["protected_identity"])
            for name in ("closed_at", "due_at", "created_at", "updated_at"):
                r[name] = _sqlite_time(r[name])
        else:
            r["id"] = str(r["id"])
        out.append(tuple(r[c] for c in COLUMNS))
    return out


def _chunks(plan: Plan) -> Iterator[list[tuple[Any, ...]]]:
    tasks = [
        (start, min(start + CHUNK, plan.rows), plan.rows, plan.dialect)
        for start in range(0, plan.rows, CHUNK)
    ]
    processes = max(1, min(os.cpu_count() or 1, 4))
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, _init_worker, (plan.data_key_file,)) as pool:
        yield from pool.imap(_chunk, tasks)


def _seed_sqlite(path: str, plan: Plan) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # Only while seeding: the service's own connections set WAL and FULL sync again.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-524288")
        conn.execute("BEGIN")
        sql = (
            f"INSERT INTO referral ({', '.join(COLUMNS)}) "  # noqa: S608 - fixed column names
            f"VALUES ({', '.join('?' * len(COLUMNS))})"
        )
        for rows in _chunks(plan):
            conn.executemany(sql, rows)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def _seed_postgres(url: str, plan: Plan) -> None:
    import psycopg

    with psycopg.connect(conninfo(url)) as conn:
        copy_sql = f"COPY referral ({', '.join(COLUMNS)}) FROM STDIN"
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for rows in _chunks(plan):
                for row in rows:
                    copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE referral")


def seed_referrals(url: str, rows: int, data_key_file: str) -> float:
    """Write `rows` referrals into the migrated database at `url`; seconds taken."""
    started = time.perf_counter()
    parsed = make_url(url)
    dialect = parsed.get_backend_name()
    plan = Plan(rows=rows, dialect=dialect, data_key_file=data_key_file)
    if dialect == "sqlite":
        _seed_sqlite(parsed.database or "", plan)
    else:
        _seed_postgres(url, plan)
    return time.perf_counter() - started


def iter_seeded(rows: int) -> Iterator[tuple[str, str, str, str]]:
    """(id, from_agency, to_agency, status) of every seeded row, recomputed without a query:
    the seed is deterministic, so the ids come from the same random streams."""
    for start in range(0, rows, CHUNK):
        stream = random.Random(start)  # noqa: S311
        for i in range(start, min(start + CHUNK, rows)):
            rid, from_agency, to_agency, status = _identity(i, stream)
            yield str(rid), from_agency, to_agency, status
