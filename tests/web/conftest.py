"""Fixtures for the web tests: a bench (the simulated system of gateway.sim: firmware nodes
on a simulated bus, a real GatewayCore, a simulated inverter) and an in-process client of
the app around it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.web.app import build_app
from tests.web.bench import Bench, BenchHost

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def warm_bench() -> Bench:
    """A bench run for ten simulated minutes (shared: tests that change it use `bench`)."""
    bench = Bench(now=T0, soc=0.8, soc_spread=0.02)
    bench.run(T0 + 600, 5.0)
    return bench


@pytest.fixture
def bench() -> Bench:
    bench = Bench(now=T0, soc=0.8, soc_spread=0.02)
    bench.run(T0 + 120, 5.0)
    return bench


def client_for(host: BenchHost, token: str | None = TOKEN, **kwargs: object) -> httpx.AsyncClient:
    app = build_app(host, token, token_file=Path("moat-bms-token"), **kwargs)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def client(bench: Bench) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(BenchHost(bench)) as c:
        yield c
