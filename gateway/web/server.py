"""`serve(host)`: the web page and API on the gateway's own event loop.

Started by `Gateway.run(web=serve)` in the gateway's anyio task group. uvicorn runs with
its signal handling off (the gateway owns SIGINT and SIGTERM) and without lifespan events;
when the task group is cancelled the server stops accepting, ends its event streams and
closes its connections before serve() returns. A port that cannot be bound is logged and
the gateway goes on without its page: the battery must not depend on a web server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import anyio
import h11
import uvicorn
from anyio.abc import TaskStatus
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.web import auth
from gateway.web.app import LOOPBACK_NAMES, build_app
from gateway.web.host import Host

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 2  # longest wait for open requests when stopping
# A request's head (request line and headers) must arrive within this after the connection
# opens or the previous response ends: slow-header ("slowloris") and idle connections are
# closed instead of holding a place. Between requests, uvicorn's keep-alive timeout applies.
HEADER_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5.0
# Open connections per client address; one beyond is closed at once. The owner's browser
# needs a few (an event stream and some requests per tab).
MAX_CONNECTIONS_PER_CLIENT = 16
MAX_CONNECTIONS = 200  # all clients together (uvicorn answers 503 beyond)


def _client_address(protocol: object) -> str | None:
    client = getattr(protocol, "client", None)
    return str(client[0]) if isinstance(client, tuple) and client else None


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with what it lacks against a hostile network: a timeout for
    the request head, and a limit of open connections per client address. Together they
    keep a flood of idle or slow connections from one machine from denying the owner."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        address = self.client[0] if self.client else None
        same = sum(1 for c in self.connections if _client_address(c) == address)
        if address is not None and same > MAX_CONNECTIONS_PER_CLIENT:
            log.debug("web: %s has %d connections open: closing the newest", address, same)
            self.transport.close()
            return
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._stop_head_timer()  # idle again: uvicorn's keep-alive timer runs now

    def _watch_head(self) -> None:
        """Run the head timer while a request head is incomplete."""
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        idle_keep_alive = self.timeout_keep_alive_task is not None
        if waiting and not idle_keep_alive:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._head_timeout)
        else:
            self._stop_head_timer()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the gateway decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def page_url(host: str, port: int) -> str:
    """The address to open, as the log shows it."""
    if host in ("0.0.0.0", "::", ""):
        return f"http://<this machine's address>:{port}/"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=64)
    sock.setblocking(False)
    return sock


def _token(path: Path, terminal: TextIO | None = None) -> str | None:
    """The API token. Never written to the log (it ends up in the journal, readable by
    more people than the token file): a new one is printed to the terminal when there is
    one, and is always in the file (mode 0600)."""
    terminal = terminal if terminal is not None else sys.stderr
    try:
        token, created = auth.load_or_create(path)
    except (auth.TokenError, OSError) as exc:
        log.error("web: no API token (%s): the page and API are read-only", exc)
        return None
    if created:
        log.warning("web: new API token created in %s (mode 0600): read it there", path)
        if terminal.isatty():
            print(f"moat-bms: the new API token (also in {path}): {token}", file=terminal)
    else:
        log.info("web: API token in %s", path)
    return token


async def serve(host: Host, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
    """Serve the page and API for `host` until cancelled. Reports the page's URL to
    task_status (tests start it with `await tg.start(serve, host)`)."""
    web = host.settings.web
    token = await anyio.to_thread.run_sync(_token, web.token_file)
    try:
        sock = bind(web.host, web.port)
    except OSError as exc:
        log.error(
            "web: cannot listen on %s port %d (%s): running without the web page",
            web.host,
            web.port,
            exc.strerror or exc,
        )
        return
    port = sock.getsockname()[1]
    url = page_url(web.host, port)
    loopback = is_loopback(web.host)
    stopping = anyio.Event()
    app = build_app(
        host,
        token,
        token_file=web.token_file,
        stopping=stopping,
        allowed_hosts=LOOPBACK_NAMES if loopback else None,
        reads_need_token=web.reads_need_token,
    )
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        http=GuardedH11Protocol,  # h11 with a head timeout and a per-client limit
        ws="none",
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_S,
        timeout_keep_alive=int(KEEP_ALIVE_S),
        limit_concurrency=MAX_CONNECTIONS,
    )
    server = _Server(config)
    if loopback:
        log.info("web: page at %s (this machine only; set web.host to reach it from others)", url)
    else:
        reads = (
            "reading needs the token too (web.reads_need_token)"
            if web.reads_need_token
            else "anyone who reaches it can read the battery, its events and the "
            "configuration (set web.reads_need_token: true to require the token for that too)"
        )
        log.warning(
            "web: page at %s, open to the network on %s: %s; actions need the token. "
            "Plain HTTP: for TLS put a reverse proxy in front (docs/web.md)",
            url,
            web.host,
            reads,
        )

    async def run_server() -> None:
        # Shielded: on cancellation the server must still shut down (close its sockets and
        # connections) instead of being torn down mid-flight.
        with anyio.CancelScope(shield=True):
            try:
                await server.serve(sockets=[sock])
            finally:
                sock.close()
                tg.cancel_scope.cancel()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_server)
            task_status.started(url)
            try:
                await anyio.sleep_forever()
            finally:
                stopping.set()
                server.should_exit = True
    finally:
        log.info("web: stopped")
