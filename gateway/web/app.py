"""The starlette application: routes, JSON errors and the security headers."""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.web.api import Api
from gateway.web.host import Host
from gateway.web.parse import MAX_BODY_BYTES, ApiError

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

# The page loads nothing from elsewhere and runs no inline script: a strict policy costs
# nothing and shuts out injected content.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def host_name(header: str) -> str:
    """The host part of a Host header: "[::1]:8080" -> "::1", "Box:80" -> "box"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.partition(":")[0]


class Guard:
    """ASGI middleware: answers only to the expected Host names (when bound to loopback,
    a web page elsewhere cannot read the API through DNS rebinding) and adds the security
    headers; API answers are never cached."""

    def __init__(self, app: ASGIApp, allowed_hosts: Collection[str] | None) -> None:
        self.app = app
        self.allowed = frozenset(allowed_hosts) if allowed_hosts is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed is not None:
            header = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_name(header) not in self.allowed:
                response = JSONResponse({"error": f"unexpected Host header {header!r}"}, 421)
                await response(scope, receive, send)
                return
        is_api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                if is_api and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse({"error": exc.reason, **exc.extra}, exc.status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("web: %s %s failed", request.method, request.url.path)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, 500)


async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def build_app(
    host: Host,
    token: str | None,
    *,
    token_file: Path | None = None,
    allowed_hosts: Collection[str] | None = None,
    stream_interval: float = 1.0,
    max_body: int = MAX_BODY_BYTES,
    stopping: anyio.Event | None = None,
    reads_need_token: bool = False,
) -> ASGIApp:
    """The web page and API around `host`.

    token: the API token (None: read-only for everyone). allowed_hosts: Host header names
    to answer (None: any). stopping: set when the server shuts down, to end event streams.
    reads_need_token: the read endpoints need the token too (the page itself and the
    OpenAPI document stay open).
    """
    api = Api(
        host,
        token,
        token_file,
        stream_interval=stream_interval,
        max_body=max_body,
        stopping=stopping,
        reads_need_token=reads_need_token,
    )
    read = api.reader
    routes = [
        Route("/", _index),
        Route("/api/status", read(api.status)),
        Route("/api/nodes", read(api.nodes)),
        Route("/api/history", read(api.history)),
        Route("/api/events", read(api.events)),
        Route("/api/stream", read(api.stream)),
        Route("/api/config", read(api.config)),
        Route("/api/config", api.edit_config, methods=["PATCH"]),
        Route("/api/auth", api.auth),
        Route("/api/openapi.json", api.openapi),
        Route("/api/actions/relay", api.relay, methods=["POST"]),
        Route("/api/actions/reset", api.reset, methods=["POST"]),
        Route("/api/actions/full-charge", api.full_charge, methods=["POST"]),
        Route("/api/actions/soc", api.soc, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    return Guard(app, allowed_hosts)
