"""serve(host): a real uvicorn server in an anyio task group, as the gateway runs it."""

from __future__ import annotations

import json
import logging
import signal
import socket
from pathlib import Path

import anyio
import httpx
import pytest

from gateway.web.server import page_url, serve
from tests.web.bench import Bench, BenchHost
from tests.web.conftest import T0

pytestmark = pytest.mark.anyio


def bench_host(tmp_path: Path, port: int = 0) -> BenchHost:
    """A host whose web settings ask for `port` (0: any free one, which the schema does not
    allow a user to write, so the settings are copied rather than validated)."""
    bench = Bench(now=T0)
    bench.run(T0 + 30, 5.0)
    web = bench.settings.web.model_copy(update={"port": port, "token_file": tmp_path / "token"})
    return BenchHost(bench, settings_override=bench.settings.model_copy(update={"web": web}))


async def first_update(response: httpx.Response) -> dict[str, object]:
    """The data of the first `update` event of an event stream."""
    event = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "update":
            data: dict[str, object] = json.loads(line.removeprefix("data: "))
            return data
    raise AssertionError("the stream ended without an update")


async def test_serve_answers_streams_and_stops_with_the_task_group(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.web")
    host = bench_host(tmp_path)
    sigint_before = signal.getsignal(signal.SIGINT)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            url = await tg.start(serve, host)
            assert url.startswith("http://127.0.0.1:")
            # uvicorn's own signal handlers are off: the gateway owns SIGINT/SIGTERM.
            assert signal.getsignal(signal.SIGINT) is sigint_before
            token = (tmp_path / "token").read_text().strip()
            async with httpx.AsyncClient(base_url=url) as client:
                status = (await client.get("/api/status")).json()
                assert status["time"] == host.bench.now
                done = await client.post(
                    "/api/actions/full-charge",
                    json={},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert done.status_code == 200
                async with client.stream("GET", "/api/stream", params={"events": 0}) as r:
                    assert r.headers["content-type"].startswith("text/event-stream")
                    update = await first_update(r)
                    assert update["status"]["soc"] == status["soc"]  # type: ignore[index]
                    kinds = [e["kind"] for e in update["events"]]  # type: ignore[attr-defined]
                    assert kinds[0] == "start" and kinds[-1] == "user"
                    # Cancel with the stream still open: the server must not wait for it.
                    tg.cancel_scope.cancel()
    port = int(url.rsplit(":", 1)[1].strip("/"))
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert f"page at {url}" in caplog.text
    assert f"new API token created in {tmp_path / 'token'} (mode 0600)" in caplog.text
    assert token not in caplog.text  # never in the log (issue 13, item 8)
    assert "web: stopped" in caplog.text


async def test_a_taken_port_leaves_the_gateway_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        host = bench_host(tmp_path, taken.getsockname()[1])
        with anyio.fail_after(5):
            await serve(host)  # returns instead of raising into the gateway's task group
    assert "cannot listen on 127.0.0.1" in caplog.text
    assert "running without the web page" in caplog.text


def test_page_url() -> None:
    assert page_url("127.0.0.1", 8080) == "http://127.0.0.1:8080/"
    assert page_url("::1", 8080) == "http://[::1]:8080/"
    assert page_url("0.0.0.0", 80) == "http://<this machine's address>:80/"
