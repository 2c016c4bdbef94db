"""Requests held to what their operation declares: its query parameters and its body's format.

FastAPI ignores a query parameter an operation does not declare (`?stauts=referred` answered
the whole unfiltered inbox), keeps the last of a repeated one, and reads a body that is not JSON
as bytes that fail validation with a 422 about the body's shape. Here each operation's declared
query parameters and body are read from its signature once, into a RouteShape kept per route;
a dependency of every operation then refuses, before anything else runs, an unknown or repeated
query parameter with 400 naming it and a body that is not JSON with 415.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request, params
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams

from service import errors
from service.i18n import Message, join, msg

JSON = "application/json"
# Names echoed back in a refusal are cut to this length; a refusal lists at most this many.
_NAME_ECHO = 64
_NAMES_LISTED = 5


def _is_sequence(annotation: Any) -> bool:
    """True for `list[str]`, `list[str] | None` and the like: a parameter that repeats."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(arg) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _is_sequence(typing.get_args(annotation)[0])
    return isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str


def is_json(content_type: str) -> bool:
    """True for `application/json` and `application/*+json`, whatever their parameters."""
    media = content_type.partition(";")[0].strip().lower()
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


def _echo(name: str) -> str:
    return repr(name if len(name) <= _NAME_ECHO else name[:_NAME_ECHO] + "...")


@dataclass(frozen=True, slots=True)
class RouteShape:
    """What one operation takes: its query parameters (and which repeat) and its body."""

    known: frozenset[str]
    # The parameters that take one value (the others may repeat: `?group=A&group=B`).
    single: frozenset[str]
    json_body: bool
    method: str

    @classmethod
    def of(cls, route: APIRoute) -> RouteShape:
        """The shape an operation declares in its signature and its dependencies'."""
        query = [
            field
            for field in get_flat_params(route.dependant)
            if isinstance(field.field_info, params.Query)
        ]
        repeated = {f.alias for f in query if _is_sequence(f.field_info.annotation)}
        body = route.body_field
        return cls(
            known=frozenset(f.alias for f in query),
            single=frozenset(f.alias for f in query) - repeated,
            json_body=body is not None and not isinstance(body.field_info, params.Form),
            method=sorted(route.methods or {"GET"})[0],
        )

    def check_query(self, query: QueryParams) -> None:
        """400 for a query parameter the operation does not take, or a single one repeated."""
        if not query:
            return
        # The request's own parse, which the operation's parameters are read from too.
        names = [name for name, _ in query.multi_items()]
        unknown = [n for n in dict.fromkeys(names) if n not in self.known]
        if unknown:
            raise errors.UnknownQueryParameter(self._unknown(unknown))
        if len(names) != len(set(names)):
            for name in self.single.intersection(names):
                if names.count(name) > 1:
                    raise errors.UnknownQueryParameter(
                        msg(
                            "The query parameter {name} is given {count} times; it takes one "
                            "value.",
                            name=_echo(name),
                            count=names.count(name),
                        )
                    )

    def _unknown(self, unknown: list[str]) -> Message:
        known = sorted(self.known)
        names = ", ".join(_echo(n) for n in unknown[:_NAMES_LISTED])
        close = difflib.get_close_matches(unknown[0], known, n=1)
        parts: list[str | Message] = [
            msg("This operation has no query parameter {names}.", names=names)
        ]
        if close:
            parts.append(msg("Did you mean {name}?", name=repr(close[0])))
        if known:
            parts.append(msg("It takes: {names}.", names=", ".join(known)))
        else:
            parts.append(msg("It takes no query parameters."))
        return join(" ", parts)

    def check_body(self, request: Request) -> None:
        """415 for a body that is not JSON on an operation that takes JSON."""
        if not self.json_body:
            return
        headers = request.headers
        length = headers.get("content-length")
        if (length is None or length == "0") and "transfer-encoding" not in headers:
            return
        given = headers.get("content-type")
        if given is not None and is_json(given):
            return
        error = not_json(given)
        if self.method in ("POST", "PATCH"):
            error.headers[f"Accept-{self.method.title()}"] = JSON
        raise error


def not_json(given: str | None) -> errors.UnsupportedMediaType:
    """The 415 of a body sent with Content-Type `given` (or none) where JSON is taken."""
    if given:
        detail = msg(
            "This operation takes a JSON body: send Content-Type: {json}, not {given}.",
            json=JSON,
            given=repr(given[:_NAME_ECHO]),
        )
    else:
        detail = msg(
            "This operation takes a JSON body: send it with Content-Type: {json}.", json=JSON
        )
    return errors.UnsupportedMediaType(detail)


async def check_request_shape(request: Request) -> None:
    """Dependency of every operation: refuse what the operation does not declare."""
    # `async` so that it runs on the event loop: a plain function would cost every request a
    # trip through the thread pool for a few dictionary lookups.
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    shapes: dict[int, RouteShape] = request.app.state.route_shapes
    shape = shapes.get(id(route))
    if shape is None:
        # Once per route: routes live as long as the app that keeps this table.
        shape = shapes[id(route)] = RouteShape.of(route)
    shape.check_query(request.query_params)
    shape.check_body(request)
