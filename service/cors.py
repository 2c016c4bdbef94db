"""Cross-origin requests from browsers (CORS): off unless `RUJUKAN_CORS_ORIGINS` lists origins.

Starlette's CORSMiddleware does the work. Two of its answers are changed here: an origin that
is not on the list gets no `Access-Control-*` field at all (Starlette still sends the exposed
headers on a simple request and the allowed methods on a refused preflight), and a refused
preflight is a problem document like every other error.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Message, Send

from service.config import Settings
from service.errors import problem_response
from service.i18n import N_, msg

# What the API's operations use; a browser asks before it sends any other.
ALLOWED_METHODS = ("GET", "HEAD", "POST", "DELETE")
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "Idempotency-Key",
    "X-Reveal-Reason",
    "Accept-Language",
    "X-Request-ID",
)
# The response fields a page's script may read (besides the CORS-safelisted ones).
EXPOSED_HEADERS = (
    "ETag",
    "Location",
    "Content-Language",
    "X-Request-ID",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "Idempotent-Replayed",
    "WWW-Authenticate",
    "Allow",
    "Accept-Post",
)
# Seconds a browser may keep a preflight's answer.
PREFLIGHT_MAX_AGE = 600


class AllowListCORS(CORSMiddleware):
    """CORSMiddleware for an exact list of origins that tells any other origin nothing."""

    def preflight_response(self, request_headers: Headers) -> Response:
        """The preflight's answer; a refusal is a problem document."""
        answer = super().preflight_response(request_headers)
        if answer.status_code == 200:
            return answer
        headers = {"Vary": answer.headers["Vary"]}
        if self.is_allowed_origin(request_headers["origin"]):
            # A listed origin asked for a method or header the API does not take: it may
            # read the answer, and learn what it may send.
            headers.update(
                (name, value)
                for name, value in answer.headers.items()
                if name.startswith("access-control-")
            )
        # Starlette's text names what was refused: "Disallowed CORS origin, method".
        refused = bytes(answer.body).decode().removeprefix("Disallowed CORS ")
        return problem_response(
            400,
            slug="cors-preflight-refused",
            title=N_("Cross-origin request refused"),
            detail=msg(
                "The service's CORS policy does not allow this request from a browser "
                "(refused: {refused}).",
                refused=refused,
            ),
            headers=headers,
        )

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        """Pass a response on, with the CORS fields when the origin is on the list."""
        origin = request_headers.get("origin")
        if (
            message["type"] != "http.response.start"
            or origin is None
            or self.is_allowed_origin(origin)
        ):
            await super().send(message, send, request_headers)
            return
        # Not on the list: only the Vary field a cache needs, nothing a browser would honour.
        message.setdefault("headers", [])
        headers = MutableHeaders(scope=message)
        headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])
        await send(message)


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Answer cross-origin requests from the configured origins; nothing when none are."""
    if not settings.cors_origins:
        return
    app.add_middleware(
        AllowListCORS,
        allow_origins=settings.cors_origins,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        # Tokens travel in the Authorization header, never in cookies.
        allow_credentials=False,
        max_age=PREFLIGHT_MAX_AGE,
    )
