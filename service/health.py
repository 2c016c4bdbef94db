"""Liveness and readiness probes."""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from service.auth.dependencies import Context
from service.db import migration_state
from service.errors import problem_response
from service.i18n import N_, Message, msg

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """The answer of a health probe."""

    status: str = Field(description="`ok` when healthy", examples=["ok"])


@router.get(
    "/healthz",
    response_model=Health,
    summary="Process is up",
    description="Answers as long as the process serves HTTP.",
)
def healthz() -> Health:
    """Liveness."""
    return Health(status="ok")


def _not_ready(reason: str, *, database: str, migrations: str) -> JSONResponse:
    # Probes read the status code; the members tell an operator which check failed without
    # naming the host, the driver or the revisions.
    return problem_response(
        503,
        slug="not-ready",
        title=N_("Not ready"),
        detail=msg("The service is not ready: {reason}.", reason=Message(reason)),
        reason=reason,
        database=database,
        migrations=migrations,
    )


@router.get(
    "/readyz",
    response_model=Health,
    summary="Ready to serve",
    description="200 when the database answers and its schema is at the latest migration; "
    "otherwise 503 with a problem document whose `reason` says which check failed and whose "
    "`database` (`reachable|unreachable`) and `migrations` (`not_at_head|unknown`) members "
    "give the state of each.",
    responses={
        503: {
            "description": "Not ready: the database is unreachable or not at the latest migration",
            "content": {
                "application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": json.loads(
                        bytes(
                            _not_ready(
                                N_("migrations pending"),
                                database="reachable",
                                migrations="not_at_head",
                            ).body
                        )
                    ),
                }
            },
        }
    },
)
def readyz(ctx: Context) -> JSONResponse:
    """Readiness: database reachable and migrated to head."""
    try:
        with ctx.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current, head = migration_state(ctx.db.engine)
    except Exception:  # noqa: BLE001 - any failure means "not ready", details go nowhere
        return _not_ready(
            N_("database unreachable"), database="unreachable", migrations="unknown"
        )
    if current != head:
        return _not_ready(
            N_("migrations pending"), database="reachable", migrations="not_at_head"
        )
    return JSONResponse({"status": "ready"})
