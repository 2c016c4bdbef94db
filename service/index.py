"""GET /: where a newcomer to the service finds its documentation and its endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["operations"])


@router.get("/", include_in_schema=False)
def index(request: Request) -> JSONResponse:
    """A small JSON index: the service's name, version and the links to start from."""
    app = request.app
    links = {
        "docs": app.state.docs_url,
        "redoc": app.state.redoc_url,
        "openapi": app.openapi_url,
        "health": "/healthz",
        "ready": "/readyz",
        "jwks": "/.well-known/jwks.json",
        "token": "/oauth/token",
        "taxonomy": "/v1/taxonomy",
    }
    return JSONResponse(
        {
            "name": app.title,
            "version": app.version,
            "summary": app.summary,
            "links": {rel: {"href": href} for rel, href in links.items() if href},
        },
        headers={"Cache-Control": "no-store"},
    )
