"""`serve(host)`: the web page and API on the gateway's own event loop.

Started by `Gateway.run(web=serve)` in the gateway's anyio task group. uvicorn runs with
its signal handling off (the gateway owns SIGINT and SIGTERM) and without lifespan events;
when the task group is cancelled the server stops accepting, ends its event streams and
closes its connections before serve() returns. A port that cannot be bound is logged and
the gateway goes on without its page: the battery must not depend on a web server.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import uvicorn
from anyio.abc import TaskStatus

from gateway.web import auth
from gateway.web.app import LOOPBACK_NAMES, build_app
from gateway.web.host import Host

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 2  # longest wait for open requests when stopping


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


def _token(path: Path) -> str | None:
    try:
        token, created = auth.load_or_create(path)
    except (auth.TokenError, OSError) as exc:
        log.error("web: no API token (%s): the page and API are read-only", exc)
        return None
    if created:
        # Shown once; afterwards only the file has it.
        log.warning("web: new API token (shown once; kept in %s, mode 0600): %s", path, token)
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
    )
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        http="h11",
        ws="none",
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_S,
        limit_concurrency=100,
    )
    server = _Server(config)
    if loopback:
        log.info("web: page at %s (this machine only; set web.host to reach it from others)", url)
    else:
        log.warning(
            "web: page at %s, open to the network: anyone who reaches it can read "
            "the battery; actions need the token",
            url,
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
