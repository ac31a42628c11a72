"""Issue 13, gateway hardening: the web page's and the API's items (one test per item,
named after it; docs/safety.md lists them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.web import configedit
from tests.web.bench import Bench, BenchHost
from tests.web.conftest import AUTH, client_for

pytestmark = pytest.mark.anyio

ORIGINAL = """\
battery:
  topology:
    capacity_ah: 100
strategy:
  max_charge_current_a: 80
"""


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
