"""HEAD wherever GET is served (RFC 9110 §9.3.2): the GET's status and headers, no body.

FastAPI routes answer only the methods they declare, so a HEAD request would get 405 from every
`/v1` GET. Here a HEAD request runs as the GET it stands for (through the same authentication,
rate limit and handler) and the body is dropped on the way out. The OpenAPI document lists only
the GETs: HEAD is HTTP's own promise about every GET, not an operation of its own.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """ASGI middleware: a HEAD request is handled as a GET and answered without its body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # The server's own scope keeps saying HEAD: it decides from it whether a body may
        # follow the headers. The app gets a copy that says GET.
        inner = {**scope, "method": "GET"}

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(inner, receive, send_without_body)
        finally:
            # What routing recorded (the route, its path parameters) for the layers outside.
            for key, value in inner.items():
                if key != "method":
                    scope[key] = value
