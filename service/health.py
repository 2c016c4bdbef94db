"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from service.auth.dependencies import Context
from service.db import migration_state

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


@router.get(
    "/healthz",
    response_model=Health,
    summary="Process is up",
    description="Answers as long as the process serves HTTP.",
)
def healthz() -> Health:
    """Liveness."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Ready to serve",
    description="200 when the database answers and its schema is at the latest migration; "
    "503 otherwise.",
    responses={503: {"description": "Not ready", "model": Health}},
)
def readyz(ctx: Context) -> JSONResponse:
    """Readiness: database reachable and migrated to head."""
    try:
        with ctx.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current, head = migration_state(ctx.db.engine)
    except Exception:  # noqa: BLE001 - any failure means "not ready", details go nowhere
        return JSONResponse({"status": "database unreachable"}, status_code=503)
    if current != head:
        return JSONResponse({"status": "migrations pending"}, status_code=503)
    return JSONResponse({"status": "ready"})
