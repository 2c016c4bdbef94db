"""Domain errors and their one translation into RFC 9457 problem documents."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from service.i18n import N_, Message, localize, msg, response_language
from service.logs import loggable_path
from service.validation_messages import field_message

log = logging.getLogger("rujukan.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:rujukan:problem:"
# A 422 lists at most this many invalid fields, and counts them all in `error_count`.
MAX_FIELD_ERRORS = 50
UNEXPECTED_ERROR = N_("The service failed to handle this request; it has been logged.")


class FieldError(BaseModel):
    """One invalid field of a request."""

    loc: list[str | int] = Field(
        description="Where the invalid value is: `body`, `query`, `path` or `header`, then "
        "the field names and list positions down to it",
        examples=[["body", "subject", "nik"]],
    )
    msg: str = Field(description="What is wrong with it, for a person to read")
    type: str = Field(
        description="A stable code for the kind of error, for programs (e.g. `missing`, "
        "`string_too_long`, `value_error`)",
        examples=["missing"],
    )
    taxonomy: str | None = Field(
        default=None,
        description=(
            "On an unknown or retired code: the list of `GET /v1/taxonomy` that holds the "
            "codes in use (e.g. `groups`)"
        ),
    )
    suggestions: list[str] | None = Field(
        default=None,
        description="On an unknown code: the closest codes in use, best first (may be empty)",
    )


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(
        description="What kind of problem: `urn:rujukan:problem:<kind>` (`about:blank` for "
        "a plain HTTP error); for programs to branch on",
        examples=["urn:rujukan:problem:not-found"],
    )
    title: str = Field(description="A short summary of the kind of problem")
    status: int = Field(description="The HTTP status code of the answer")
    detail: str | None = Field(
        default=None, description="What went wrong this time, for a person to read"
    )
    instance: str | None = Field(
        default=None,
        description="RFC 9457's reference to this occurrence; not sent by this service (the "
        "`X-Request-ID` response header names the request)",
    )
    errors: list[FieldError] | None = Field(
        default=None,
        description=f"On 422: the invalid fields, at most {MAX_FIELD_ERRORS} of them",
    )
    error_count: int | None = Field(
        default=None,
        description=(
            "On 422, beside `errors`: how many fields are invalid in all (more than `errors` "
            "lists when it is cut at its limit)"
        ),
    )
    current_status: str | None = Field(
        default=None,
        description="On 409 for a move the state does not allow: the referral's status now",
    )
    existing_referral_id: str | None = Field(
        default=None,
        description="On 409 for a duplicate: the id of the caller's open referral of the same "
        "person to the same agency",
    )
    violated_policies: list[str] | None = Field(
        default=None,
        alias="violated-policies",
        description="On 429: the quota policies used up (draft-ietf-httpapi-ratelimit-headers).",
    )
    reason: str | None = Field(
        default=None, description="On 503 from `/readyz`: which readiness check failed."
    )
    database: str | None = Field(
        default=None, description="On 503 from `/readyz`: `reachable` or `unreachable`."
    )
    migrations: str | None = Field(
        default=None, description="On 503 from `/readyz`: `not_at_head` or `unknown`."
    )


class DomainError(Exception):
    """Base of every error a service raises on purpose.

    `title` (a class constant marked with `N_`) and `detail` (a `msg(...)`, or a constant) are
    shown in the caller's language; see service.i18n.
    """

    status: int = 400
    slug: str = "bad-request"
    title: str | Message = N_("Bad request")

    def __init__(self, detail: str | Message | None = None, **extra: Any) -> None:
        super().__init__(str(detail or self.title))
        self.detail: str | Message = detail or self.title
        self.extra = extra
        self.headers: dict[str, str] = {}


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", N_("Authentication required")

    def __init__(self, detail: str | Message | None = None, error: str = "invalid_token") -> None:
        super().__init__(detail)
        # A header is not negotiated: its description stays in English.
        description = str(detail or "").replace('"', "'")
        self.headers = {
            "WWW-Authenticate": (
                f'Bearer realm="rujukan", error="{error}", error_description="{description}"'
                if detail
                else 'Bearer realm="rujukan"'
            )
        }


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", N_("Not allowed")


class InsufficientScope(Forbidden):
    slug, title = "insufficient-scope", N_("Token lacks the required scope")

    def __init__(self, scope: str) -> None:
        super().__init__(msg("This operation needs the scope '{scope}'.", scope=scope))
        self.headers = {
            "WWW-Authenticate": f'Bearer realm="rujukan", error="insufficient_scope", '
            f'scope="{scope}"'
        }


class NotFound(DomainError):
    status, slug, title = 404, "not-found", N_("Not found")


class Conflict(DomainError):
    status, slug, title = 409, "conflict", N_("Conflict")


class InvalidTransition(Conflict):
    slug, title = "invalid-transition", N_("Action not allowed in the current state")

    def __init__(self, detail: str | Message, current_status: str) -> None:
        super().__init__(detail, current_status=current_status)


class DuplicateReferral(Conflict):
    slug, title = "duplicate-referral", N_("An open referral of this person already exists")

    def __init__(self, existing_id: str | None, reference: str | None) -> None:
        if existing_id is None:
            # The caller is not a party to the open referral: it must not learn its id.
            super().__init__(
                N_("The receiving agency already has an open referral of this person.")
            )
            return
        super().__init__(
            msg(
                "Referral {reference} of the same person to the same agency is still open.",
                reference=reference,
            ),
            existing_referral_id=existing_id,
        )


class PreconditionFailed(DomainError):
    status, slug, title = 412, "precondition-failed", N_("The referral has changed")


class PreconditionRequired(DomainError):
    status, slug, title = 428, "precondition-required", N_("If-Match header required")


class InvalidIfMatch(DomainError):
    """400: an If-Match value that is neither `*` nor a list of quoted entity tags."""

    status, slug, title = 400, "invalid-if-match", N_("If-Match is not an entity tag")


class UnsupportedMediaType(DomainError):
    """415: a request body in a format the operation does not take."""

    status, slug, title = 415, "unsupported-media-type", N_("Unsupported media type")


class UnknownQueryParameter(DomainError):
    """400: a query parameter the operation does not declare, or one given twice."""

    status, slug, title = 400, "invalid-query-parameter", N_("Query parameter not accepted")


class ValidationFailed(DomainError):
    status, slug, title = 422, "validation-failed", N_("The request is not valid")

    def __init__(
        self, detail: str | Message, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(detail, errors=errors or [])


class AgreementMissing(ValidationFailed):
    """422: no cooperation agreement in force covers a referral between two agencies."""

    slug, title = "agreement-missing", N_("No cooperation agreement in force")


class IdempotencyMismatch(DomainError):
    status, slug, title = (
        422,
        "idempotency-key-reused",
        N_("Idempotency-Key reused with another body"),
    )


class OAuthError(DomainError):
    """RFC 6749 §5.2 error, carried in a problem document with `error` members.

    The `error` code (also the title) never changes with the language; the description does.
    """

    def __init__(self, error: str, description: str | Message, status: int = 400) -> None:
        super().__init__(description, error=error, error_description=description)
        self.status = status
        self.slug = "oauth-" + error.replace("_", "-")
        self.title = error
        if status == 401:
            self.headers = {"WWW-Authenticate": 'Basic realm="rujukan"'}


class RateLimited(DomainError):
    """429: a quota policy is used up; `Retry-After` and the RateLimit fields say how long."""

    status, slug, title = 429, "quota-exceeded", N_("Quota exceeded")

    def __init__(
        self, detail: str | Message, *, policy: str, headers: dict[str, str], **extra: Any
    ) -> None:
        super().__init__(detail, **{"violated-policies": [policy]}, **extra)
        self.headers = dict(headers)


# The reason phrases of the statuses the service answers with (titles of `about:blank`
# problems), marked so that they are translated.
STATUS_PHRASES: dict[int, str] = {
    400: N_("Bad Request"),
    401: N_("Unauthorized"),
    403: N_("Forbidden"),
    404: N_("Not Found"),
    405: N_("Method Not Allowed"),
    406: N_("Not Acceptable"),
    408: N_("Request Timeout"),
    409: N_("Conflict"),
    411: N_("Length Required"),
    412: N_("Precondition Failed"),
    413: N_("Request Entity Too Large"),
    415: N_("Unsupported Media Type"),
    422: N_("Unprocessable Entity"),
    428: N_("Precondition Required"),
    429: N_("Too Many Requests"),
    500: N_("Internal Server Error"),
    502: N_("Bad Gateway"),
    503: N_("Service Unavailable"),
    504: N_("Gateway Timeout"),
}


# Details the framework itself gives its HTTPExceptions, translated by lookup.
FRAMEWORK_DETAILS = (N_("There was an error parsing the body"),)


class LocalizedHTTPException(StarletteHTTPException):
    """An HTTPException whose detail is shown in the caller's language."""

    def __init__(
        self, status_code: int, detail: Message, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status_code, str(detail), dict(headers) if headers else None)
        self.message = detail


def _localized(value: Any, language: str) -> Any:
    if isinstance(value, Message):
        return value.render(language)
    if isinstance(value, list):
        return [_localized(item, language) for item in value]
    if isinstance(value, dict):
        return {k: _localized(v, language) for k, v in value.items()}
    return value


def problem_response(
    status: int,
    *,
    slug: str | None = None,
    title: str | Message | None = None,
    detail: str | Message | None = None,
    headers: Mapping[str, str] | None = None,
    language: str | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build a problem+json response, its texts in `language` (default: the request's)."""
    language = language or response_language.get()
    if title is None:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else None
        title = STATUS_PHRASES.get(status, phrase or N_("Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug if slug else "about:blank",
        "title": localize(title, language),
        "status": status,
    }
    if detail:
        body["detail"] = localize(detail, language)
    body.update({k: _localized(v, language) for k, v in extra.items() if v is not None})
    if isinstance(body.get("errors"), list):
        listed = body["errors"]
        body["error_count"] = body.pop("error_count", None) or len(listed)
        body["errors"] = listed[:MAX_FIELD_ERRORS]
    all_headers = {
        "Cache-Control": "no-store",
        "Content-Language": language,
        "Vary": "Accept-Language",
    }
    all_headers.update(headers or {})
    return JSONResponse(
        body, status_code=status, headers=all_headers, media_type=PROBLEM_MEDIA_TYPE
    )


def domain_problem(exc: DomainError, language: str | None = None) -> JSONResponse:
    """The problem document of a domain error."""
    return problem_response(
        exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        language=language,
        **exc.extra,
    )


def http_problem(
    exc: StarletteHTTPException,
    headers: Mapping[str, str] | None = None,
    language: str | None = None,
) -> JSONResponse:
    """The problem document of an HTTP exception (the framework's, or the service's own)."""
    detail: str | Message | None
    if isinstance(exc, LocalizedHTTPException):
        detail = exc.message
    else:
        detail = exc.detail if isinstance(exc.detail, str) else None
        if detail == HTTPStatus(exc.status_code).phrase:
            detail = None
    return problem_response(
        exc.status_code,
        detail=detail,
        headers={**(exc.headers or {}), **(headers or {})},
        language=language,
    )


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # The raw errors echo the submitted values (`input`, `ctx`); those can be a
    # protected person's name or NIK, so only location, message and type leave, the message
    # rebuilt (in the caller's language) from the type and the context, never the input.
    # Only the errors that will be listed are cleaned.
    return [
        {
            "loc": [p for p in err.get("loc", ())],
            "msg": field_message(err),
            "type": err.get("type", ""),
        }
        for err in exc.errors()[:MAX_FIELD_ERRORS]
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> str:
    """Every method the path answers (RFC 9110 §15.5.6).

    The router's own 405 names only the methods of the first route of the path, and the
    service declares one route per method; so each method is tried against every route.
    """
    routes = request.app.router.routes
    allowed: list[str] = []
    for method in _METHODS:
        # HEAD is answered wherever GET is (service.head).
        if (method == "HEAD" and "GET" in allowed) or any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        ):
            allowed.append(method)
    return ", ".join(allowed)


def _slash_hint(request: Request) -> Message | None:
    """For a path that exists without its trailing slash: where the resource is."""
    path = request.url.path
    if not path.endswith("/") or path == "/":
        return None
    bare = path.rstrip("/")
    probe = {**request.scope, "path": bare, "raw_path": bare.encode()}
    if not any(route.matches(probe)[0] is not Match.NONE for route in request.app.router.routes):
        return None
    return msg("Paths here have no trailing slash: the resource is at {path}", path=bare)


def install_error_handlers(app: FastAPI) -> None:
    """Turn every error, expected or not, into a problem document."""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return domain_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            422,
            slug="validation-failed",
            title=ValidationFailed.title,
            detail=N_("One or more fields are invalid."),
            errors=_clean_validation_errors(exc),
            error_count=len(exc.errors()),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = {}
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        if exc.status_code == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
            hint = _slash_hint(request)
            if hint is not None:
                return problem_response(404, detail=hint, headers=headers)
        return http_problem(exc, headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled error",
            extra={"error_type": type(exc).__name__, "path": loggable_path(request.scope)},
            exc_info=exc,
        )
        return problem_response(500, detail=UNEXPECTED_ERROR)
