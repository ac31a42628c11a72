"""Fixtures of the MQTT tests: a PKI per session, a fresh mosquitto per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt import helpers
from tests.mqtt.broker import Broker, Pki, make_pki, require_mosquitto


@pytest.fixture(autouse=True)
def close_simulators() -> Iterator[None]:
    yield
    while helpers.OPEN:
        helpers.OPEN.pop().close()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(tmp_path: Path, pki: Pki) -> Iterator[Broker]:
    executable = require_mosquitto()
    directory = tmp_path / "broker"
    directory.mkdir()
    b = Broker(directory, pki, executable)
    b.start()
    try:
        yield b
    finally:
        b.stop()
