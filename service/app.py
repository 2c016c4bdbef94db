"""create_app(): routers, error handlers, middleware, stable operationIds."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import __version__
from service.audit.router import router as audit_router
from service.auth.router import router as auth_router
from service.bodies import MAX_BODY_BYTES, BodyBudget, BodyGuard, budget_spent, too_large
from service.config import Settings, get_settings
from service.context import ServiceContext
from service.cors import install_cors
from service.errors import (
    UNEXPECTED_ERROR,
    http_problem,
    install_error_handlers,
    problem_response,
)
from service.events.dispatcher import BackgroundDispatcher
from service.events.router import events_router, webhooks_router
from service.fhir.router import router as fhir_router
from service.head import HeadAsGet
from service.health import router as health_router
from service.i18n import negotiate, response_language
from service.index import router as index_router
from service.logs import access_fields, configure_logging, loggable_path
from service.metrics import install_metrics
from service.openapi_docs import (
    add_problem_schemas,
    document_body_errors,
    document_if_match,
    document_request_shape,
    document_server_errors,
    require_if_match,
    tidy_security,
)
from service.openapi_enums import name_enums
from service.ratelimit import document_rate_limits, install_rate_limits
from service.referrals.router import router as referrals_router
from service.request_shape import check_request_shape
from service.requestctx import request_id
from service.stats.router import router as stats_router
from service.subjects.router import router as subjects_router
from service.taxonomy.router import router as taxonomy_router

log = logging.getLogger("rujukan.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _operation_id(route: APIRoute) -> str:
    # The endpoint function's name is the operationId: readable and stable.
    return route.name


class RequestContextMiddleware:
    """Request ids (X-Request-ID accepted and echoed), the language of problem documents
    (negotiated from Accept-Language), request body limits (size, time, the process's budget:
    see service.bodies), security headers, the access log line."""

    def __init__(
        self, app: ASGIApp, *, body_timeout: float, body_budget: int, default_language: str
    ) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.bodies = BodyBudget(body_budget)
        self.default_language = default_language

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        accept_language = headers.get(b"accept-language", b"").decode("latin-1")
        language = response_language.set(negotiate(accept_language, self.default_language))
        length = headers.get(b"content-length")
        try:
            refusal = None
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                refusal = too_large()
            elif length is not None and not self.bodies.take(int(length)):
                refusal = budget_spent()
            if refusal is not None:
                response = http_problem(refusal)
                response.headers["X-Request-ID"] = rid
                await response(scope, receive, send)
                return
            body = BodyGuard(receive, self.bodies, self.body_timeout, int(length or 0))
            try:
                await self._handle(scope, body.receive, send, rid)
            finally:
                body.release()
        finally:
            response_language.reset(language)
            request_id.reset(token)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        status_code = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                extra = [
                    (b"x-request-id", rid.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        started = time.perf_counter()
        response_started = False

        async def send_tracked(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send_with_headers(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            # Handled here, not by Starlette's outermost layer, so that the 500 still
            # carries the request id and the log line names it.
            log.error(
                "unhandled error",
                extra={"error_type": type(exc).__name__, "path": loggable_path(scope)},
                exc_info=exc,
            )
            if response_started:
                raise
            await problem_response(500, detail=UNEXPECTED_ERROR)(scope, receive, send_tracked)
        finally:
            # Never the query string (it can carry a NIK filter) nor a raw path (a NIK can be
            # typed into one): see loggable_path.
            log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": loggable_path(scope),
                    "status": status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    **access_fields(scope),
                },
            )


def create_app(settings: Settings | None = None, ctx: ServiceContext | None = None) -> FastAPI:
    """Build the ASGI application."""
    settings = settings or (ctx.settings if ctx else get_settings())
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "ctx", None) is None:
            app.state.ctx = ServiceContext.build(settings)
        # The pool that runs the endpoints (see Settings.worker_threads); one per event loop.
        to_thread.current_default_thread_limiter().total_tokens = (
            app.state.ctx.settings.worker_threads
        )
        dispatcher = None
        if app.state.ctx.settings.run_embedded_dispatcher:
            dispatcher = BackgroundDispatcher(app.state.ctx).start()
        yield
        if dispatcher is not None:
            dispatcher.stop()
        app.state.ctx.db.dispose()

    # Swagger UI and ReDoc with their scripts and styles served by the service itself:
    # government networks are often closed to CDNs.
    docs_url, redoc_url = "/docs", "/redoc"
    app = FastAPIOffline(
        docs_url=docs_url,
        redoc_url=redoc_url,
        static_url="/docs-assets",
        # Swagger UI would otherwise send the spec's URL to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
        title="Rujukan",
        version=__version__,
        summary="Referrals of vulnerable people between Kemensos, LPSK and KemenHAM.",
        description=(
            "Carries referral tickets (`referred -> assessed -> served -> closed`) between the "
            "Ministry of Social Affairs (Kemensos), the Witness and Victim Protection Agency "
            "(LPSK) and the Ministry of Human Rights (KemenHAM). Every `/v1` operation needs an "
            "OAuth 2.0 bearer token from `POST /oauth/token`. Errors are RFC 9457 problem "
            "documents (`application/problem+json`)."
        ),
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
        # `/v1/referrals/` is answered 404 (with a hint), not redirected with an empty 307.
        redirect_slashes=False,
    )
    app.state.ctx = ctx
    app.state.docs_url, app.state.redoc_url = docs_url, redoc_url
    app.state.route_shapes = {}
    install_error_handlers(app)
    # Innermost: the layers outside see the request as HEAD, the routes as GET.
    app.add_middleware(HeadAsGet)
    install_rate_limits(app, settings)
    app.add_middleware(
        RequestContextMiddleware,
        body_timeout=settings.body_timeout_seconds,
        body_budget=settings.body_budget_bytes,
        default_language=settings.default_language,
    )
    # Outside the request context, so that its refusals (413, 408, 503) reach a page too.
    install_cors(app, settings)
    # Every operation takes only the query parameters and the body format it declares.
    declared = [Depends(check_request_shape)]
    for api_router in (
        index_router,
        auth_router,
        referrals_router,
        fhir_router,
        taxonomy_router,
        subjects_router,
        events_router,
        webhooks_router,
        audit_router,
        stats_router,
        health_router,
    ):
        app.include_router(api_router, dependencies=declared)
    install_metrics(app, dependencies=declared)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            for document in (
                add_problem_schemas,
                document_rate_limits,
                document_body_errors,
                document_request_shape,
                document_if_match,
                document_server_errors,
                require_if_match,
                tidy_security,
                name_enums,
            ):
                spec = document(spec)
            app.openapi_schema = spec
        return app.openapi_schema

    # FastAPI's documented way to extend the schema is to replace this method.
    app.openapi = openapi  # type: ignore[method-assign]
    return app


def openapi_spec(app: FastAPI | None = None) -> dict[str, Any]:
    """The OpenAPI document, as served at /openapi.json."""
    return (app or create_app(Settings(env="dev"))).openapi()
