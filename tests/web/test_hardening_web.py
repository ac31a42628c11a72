"""Issue 13, gateway hardening: the web page's and the API's items (one test per item,
named after it; docs/safety.md lists them)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import anyio
import anyio.abc
import httpx
import pytest

from gateway.web import configedit, server
from tests.common import ROOT
from tests.web.bench import Bench, BenchHost
from tests.web.conftest import AUTH, T0, client_for

pytestmark = pytest.mark.anyio

ORIGINAL = """\
battery:
  topology:
    capacity_ah: 100
strategy:
  max_charge_current_a: 80
"""


def bench_host(tmp_path: Path, web_host: str = "127.0.0.1") -> BenchHost:
    """A host serving on any free port (settings copied: the schema does not allow 0)."""
    bench = Bench(now=T0)
    bench.run(T0 + 30, 5.0)
    web = bench.settings.web.model_copy(
        update={"port": 0, "token_file": tmp_path / "token", "host": web_host}
    )
    return BenchHost(bench, settings_override=bench.settings.model_copy(update={"web": web}))


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "moat-bms.yaml"
    path.write_text(ORIGINAL)
    return path


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('{"strategy.max_charge_current_a": Infinity}', "Infinity"),
        ('{"strategy.max_charge_current_a": NaN}', "NaN"),
        ('{"strategy.max_charge_current_a": 1e999}', "strategy.max_charge_current_a"),
        ('{"strategy.voltages.charge_target_v": 5.0}', "strategy.voltages.charge_target_v"),
        ('{"strategy.voltages.min_cell_v": 3.6}', "strategy.voltages"),
        ('{"strategy.max_charge_current_a": 10000}', "strategy.max_charge_current_a"),
    ],
)
async def test_item04_the_page_refuses_what_run_refuses_and_writes_nothing(
    bench: Bench, config_file: Path, body: str, key: str
) -> None:
    async with client_for(BenchHost(bench, config_path=config_file)) as client:
        response = await client.patch(
            "/api/config",
            content=body,
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert key in response.text
        assert config_file.read_text() == ORIGINAL
        assert not config_file.with_name(config_file.name + ".bak").exists()
        again = await client.get("/api/config")
        assert again.status_code == 200
        assert again.json()["file_error"] is None


async def test_item05_get_config_parses_the_file_only_when_it_changed(
    bench: Bench, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[Path] = []
    read_raw = configedit.read_raw

    def counted(path: Path):  # the real reader, counted
        reads.append(path)
        return read_raw(path)

    monkeypatch.setattr(configedit, "read_raw", counted)
    async with client_for(BenchHost(bench, config_path=config_file)) as client:
        for _ in range(20):
            assert (await client.get("/api/config")).status_code == 200
        assert len(reads) == 1
        config_file.write_text(ORIGINAL.replace("80", "70"))
        view = (await client.get("/api/config")).json()
        assert len(reads) == 2
        fields = {f["key"]: f for f in view["fields"]}
        assert fields["strategy.max_charge_current_a"]["value"] == 70


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 60_000,
        b"[" * 30_000 + b"]" * 30_000,
        b'{"soc": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001,
        b"\xff\xfe\xfd",
        b'{"soc": 50',
        b'{"soc": NaN}',
        b"null",
    ],
    ids=["open-brackets", "deep-list", "deep-object", "not-utf8", "truncated", "nan", "null"],
)
async def test_item07_every_malformed_body_answers_4xx(bench: Bench, body: bytes) -> None:
    async with client_for(BenchHost(bench)) as client:
        for path, method in (("/api/soc", "POST"), ("/api/config", "PATCH")):
            response = await client.request(
                method, path, content=body, headers={**AUTH, "Content-Type": "application/json"}
            )
            assert 400 <= response.status_code < 500, (path, response.status_code, response.text)


# ---------------------------------------------------------------------- items 7-9 (server)


async def test_item07_idle_and_slow_header_connections_do_not_deny_the_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "HEADER_TIMEOUT_S", 1.0)
    host = bench_host(tmp_path)
    attack: list[anyio.abc.SocketStream] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            url = await tg.start(server.serve, host)
            port = int(url.rsplit(":", 1)[1].strip("/"))
            # 120 connections from another machine (127.0.0.2): half idle, half sending an
            # incomplete request head, as a slowloris client does.
            for i in range(120):
                stream = await anyio.connect_tcp("127.0.0.1", port, local_host="127.0.0.2")
                if i % 2:
                    await stream.send(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                attack.append(stream)
            async with httpx.AsyncClient(base_url=url, timeout=5) as owner:
                for _ in range(3):
                    response = await owner.get("/api/status")
                    assert response.status_code == 200, response.text
            # Every attacking connection is closed: at once beyond the per-client limit,
            # after the head timeout for the rest.
            closed = 0
            for stream in attack:
                with anyio.fail_after(5):
                    try:
                        data = await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                        closed += 1
                    else:
                        raise AssertionError(f"the server answered a slow client: {data!r}")
            assert closed == 120
            tg.cancel_scope.cancel()
    for stream in attack:
        await stream.aclose()


class Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "service"])
def test_item08_the_api_token_is_never_written_to_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, tty: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    terminal = Terminal(tty)
    path = tmp_path / "token"
    token = server._token(path, terminal)
    assert token is not None and token == path.read_text().strip()
    assert token not in caplog.text
    assert str(path) in caplog.text  # the log says where it is
    assert (token in terminal.getvalue()) is tty
    assert server._token(path, terminal) == token  # the second start: not shown again
    assert token not in caplog.text
    assert terminal.getvalue().count(token) == (1 if tty else 0)


async def test_item09_reads_can_require_the_token(bench: Bench) -> None:
    async with client_for(BenchHost(bench), reads_need_token=True) as client:
        for path in ("/api/status", "/api/nodes", "/api/events", "/api/history", "/api/config"):
            assert (await client.get(path)).status_code == 401, path
            assert (await client.get(path, headers=AUTH)).status_code == 200, path
        assert (await client.get("/api/openapi.json")).status_code == 200
        assert (await client.get("/")).status_code == 200  # the page itself, without data
        wrong = {"Authorization": "Bearer wrong-token-0123456789"}
        assert (await client.get("/api/status", headers=wrong)).status_code == 403
    async with client_for(BenchHost(bench)) as client:  # the default: reads are open
        assert (await client.get("/api/status")).status_code == 200


async def test_item09_a_non_loopback_page_says_what_is_exposed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.web")
    host = bench_host(tmp_path, web_host="0.0.0.0")  # the case under test
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(server.serve, host)
            tg.cancel_scope.cancel()
    assert "open to the network" in caplog.text
    assert "web.reads_need_token" in caplog.text
    assert "reverse proxy" in caplog.text
    text = (ROOT / "docs" / "web.md").read_text()
    assert "reverse proxy" in text and "reads_need_token" in text


async def test_new_user_the_event_stream_sends_cache_control_once(bench: Bench) -> None:
    stopping = anyio.Event()
    stopping.set()  # the stream sends one update and ends
    async with client_for(BenchHost(bench), stopping=stopping) as client:
        with anyio.fail_after(10):
            response = await client.get("/api/stream")
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert "event: update" in response.text
