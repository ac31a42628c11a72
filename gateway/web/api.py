"""The JSON API: read endpoints open to all, actions and configuration edits behind the token.

The handlers run in the gateway's event loop and read the core directly; file access goes
through worker threads so the loop (and with it the battery) never waits on a disk.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from gateway.config.root import ConfigError, Settings, dump
from gateway.contracts.decision import RelayAction
from gateway.outputs import Output
from gateway.record.events import EventKind
from gateway.web import views
from gateway.web.auth import authorized
from gateway.web.configedit import (
    EDITABLE_SECTIONS,
    ConfigFile,
    EditError,
    backup_path,
    fields,
    pending,
)
from gateway.web.host import Host
from gateway.web.openapi import document
from gateway.web.parse import (
    MAX_BODY_BYTES,
    ApiError,
    choice,
    integer,
    json_body,
    number,
    only,
    query_count,
    query_number,
)

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
STREAM_RETRY_MS = 2000  # how soon a browser reconnects a dropped event stream


class Api:
    """Endpoint handlers around one Host."""

    def __init__(
        self,
        host: Host,
        token: str | None,
        token_file: Path | None = None,
        *,
        stream_interval: float = 1.0,
        max_body: int = MAX_BODY_BYTES,
        stopping: anyio.Event | None = None,
        reads_need_token: bool = False,
    ) -> None:
        self.host = host
        self.reads_need_token = reads_need_token
        self.token = token
        self.token_file = token_file
        self.stream_interval = stream_interval
        self.max_body = max_body
        self.stopping = stopping
        self.config_file = ConfigFile(host.config_path) if host.config_path else None

    # ------------------------------------------------------------------ reading

    def _wall_offset(self) -> float:
        """Core clock -> wall time for display (a host on simulated time has none)."""
        offset = getattr(self.host, "wall_offset", None)
        return float(offset()) if callable(offset) else 0.0

    async def status(self, request: Request) -> Response:
        return JSONResponse(
            views.status(self.host.core, self.host.clock(), self._outputs(), self._wall_offset())
        )

    def _outputs(self) -> Sequence[Output]:
        # The gateway and the simulator have outputs; a host without any shows none.
        outputs: Sequence[Output] = getattr(self.host, "outputs", ())
        return outputs

    async def nodes(self, request: Request) -> Response:
        return JSONResponse({"nodes": views.nodes(self.host.core, self.host.clock())})

    async def history(self, request: Request) -> Response:
        since = query_number(request, "since", -math.inf)
        return JSONResponse(views.history(self.host.core, since))

    async def events(self, request: Request) -> Response:
        since = query_count(request, "since", 0)
        return JSONResponse(views.events(self.host.core, since))

    async def config(self, request: Request) -> Response:
        running = self.host.settings
        configured, file_error = running, None
        if self.config_file is not None:
            try:
                configured = await anyio.to_thread.run_sync(self.config_file.load)
            except ConfigError as exc:
                file_error = str(exc)
        return JSONResponse(self._config_view(configured, running, file_error))

    def _config_view(
        self, configured: Settings, running: Settings, file_error: str | None
    ) -> dict[str, Any]:
        path = self.host.config_path
        return {
            "path": str(path) if path else None,
            "editable_sections": list(EDITABLE_SECTIONS),
            "file_error": file_error,
            "pending_restart": pending(configured, running),
            "fields": fields(configured, running),
            "running": dump(running),
        }

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(document())

    async def auth(self, request: Request) -> Response:
        """200 when the request carries the token: lets the page unlock its controls."""
        self._authorize(request)
        return JSONResponse({"ok": True})

    async def stream(self, request: Request) -> Response:
        """Server-sent events: an `update` with status, nodes, new events and new history
        samples at once and then every `stream_interval` seconds. Its id is the event count,
        so a reconnecting browser (Last-Event-ID) gets exactly the events it missed."""
        core = self.host.core
        events_since = query_count(
            request, "events", core.events.count, request.headers.get("last-event-id")
        )
        history_since = query_number(request, "history", self.host.clock())
        return StreamingResponse(
            self._updates(events_since, history_since),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _updates(self, events_since: int, history_since: float) -> AsyncIterator[str]:
        yield f"retry: {STREAM_RETRY_MS}\n\n"
        while True:
            core, now = self.host.core, self.host.clock()
            new_events = views.events(core, events_since)
            events_since = new_events["count"]
            columns = core.history.columns(history_since)
            if columns["time"]:
                history_since = max(t for t in columns["time"] if t is not None)
            payload = {
                "status": views.status(core, now, self._outputs(), self._wall_offset()),
                "nodes": views.nodes(core, now),
                "events": new_events["events"],
                "history": columns,
            }
            data = json.dumps(payload, allow_nan=False, separators=(",", ":"))
            yield f"id: {events_since}\nevent: update\ndata: {data}\n\n"
            if await self._stopped_within(self.stream_interval):
                return

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait `seconds`; True at once when the server is shutting down."""
        if self.stopping is None:
            await anyio.sleep(seconds)
            return False
        with anyio.move_on_after(seconds):
            await self.stopping.wait()
        return self.stopping.is_set()

    # ------------------------------------------------------------------ acting

    def reader(self, handler: Handler) -> Handler:
        """A read endpoint: open to all, or behind the token with web.reads_need_token."""

        async def read(request: Request) -> Response:
            if self.reads_need_token:
                # EventSource cannot send headers: the stream may carry it in the query.
                self._authorize(request, query=request.url.path == "/api/stream")
            return await handler(request)

        return read

    def _authorize(self, request: Request, *, query: bool = False) -> None:
        where = f" (it is in {self.token_file})" if self.token_file else ""
        if self.token is None:
            raise ApiError(403, f"no API token is set up on the gateway{where}: read-only")
        header = request.headers.get("authorization")
        if header is None and query and "access_token" in request.query_params:
            header = f"Bearer {request.query_params['access_token']}"
        if header is None:
            raise ApiError(401, f"this needs the API token: Authorization: Bearer TOKEN{where}")
        if not authorized(header, self.token):
            raise ApiError(403, "wrong API token")

    async def _action_body(self, request: Request, *allowed: str) -> dict[str, Any]:
        self._authorize(request)
        body = await json_body(request, self.max_body)
        only(body, *allowed)
        return body

    def _done(self, message: str) -> Response:
        return JSONResponse({"ok": True, "message": message, "event": self.host.core.events.count})

    async def relay(self, request: Request) -> Response:
        body = await self._action_body(request, "node", "action")
        node = integer(body, "node")
        action = RelayAction[choice(body, "action", ("open", "close")).upper()]
        self._act(lambda now: self.host.core.request_relay(node, action, now))
        return self._done(f"relay {action.name.lower()} requested for node {node}")

    async def reset(self, request: Request) -> Response:
        body = await self._action_body(request, "node")
        node = integer(body, "node")
        self._act(lambda now: self.host.core.request_reset(node, now))
        return self._done(f"fault reset requested for node {node}")

    async def full_charge(self, request: Request) -> Response:
        await self._action_body(request)
        self._act(self.host.core.request_full_charge)
        return self._done("full charge requested")

    async def soc(self, request: Request) -> Response:
        body = await self._action_body(request, "soc")
        percent = number(body, "soc")
        if not 0.0 <= percent <= 100.0:
            raise ApiError(400, f"soc: must be within 0..100 %, got {percent}")
        self._act(lambda now: self.host.core.set_soc(percent, now))
        return self._done(f"SoC set to {percent:.1f} %")

    def _act(self, action: Any) -> None:
        try:
            action(self.host.clock())
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

    async def edit_config(self, request: Request) -> Response:
        """Apply dotted-key edits to the configuration file (validated, saved atomically with
        a backup). They apply when the gateway restarts."""
        self._authorize(request)
        body = await json_body(request, self.max_body)
        if self.config_file is None:
            raise ApiError(
                409,
                "the gateway runs on defaults without a configuration file: "
                "start it with --config FILE to edit settings here",
            )
        try:
            configured = await anyio.to_thread.run_sync(self.config_file.edit, body)
        except EditError as exc:
            raise ApiError(400, str(exc), problems=exc.problems) from None
        except ConfigError as exc:
            raise ApiError(400, "; ".join(exc.problems), problems=exc.problems) from None
        except OSError as exc:
            log.error("cannot save %s: %s", self.config_file.path, exc)
            raise ApiError(500, f"cannot save {self.config_file.path}: {exc}") from None
        changed = sorted(body)
        self.host.core.events.add(
            self.host.clock(),
            EventKind.USER,
            f"configuration saved: {', '.join(changed)} (applies at the next start)",
        )
        view = self._config_view(configured, self.host.settings, None)
        view["saved"] = {
            "path": str(self.config_file.path),
            "backup": str(backup_path(self.config_file.path)),
            "changed": changed,
        }
        return JSONResponse(view)
