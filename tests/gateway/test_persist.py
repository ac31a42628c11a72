"""The state file: atomic, private, survives garbage and full disks."""

from __future__ import annotations

import json
import os
import stat

from gateway.record.persist import StateStore


def test_round_trip_and_no_temporary_left(tmp_path) -> None:
    store = StateStore(tmp_path / "state.json")
    assert store.load() is None
    assert store.save({"soc": 55.5, "capacity_ah": 98.0})
    assert store.load() == {"soc": 55.5, "capacity_ah": 98.0}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_file_is_private(tmp_path) -> None:
    store = StateStore(tmp_path / "state.json")
    store.save({"soc": 1.0})
    assert stat.S_IMODE(os.stat(tmp_path / "state.json").st_mode) == 0o600


def test_creates_missing_directory(tmp_path) -> None:
    store = StateStore(tmp_path / "var" / "lib" / "state.json")
    assert store.save({"soc": 1.0})
    assert store.load() == {"soc": 1.0}


def test_unreadable_file_is_kept_aside_not_overwritten(tmp_path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{ torn")
    store = StateStore(path)
    assert store.load() is None
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("state.json.bad-")]
    assert len(aside) == 1 and aside[0].read_text() == "{ torn"


def test_wrong_format_is_rejected(tmp_path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"format": 99, "state": {}}))
    assert StateStore(path).load() is None


def test_write_failure_keeps_the_old_file_and_reports(tmp_path, monkeypatch) -> None:
    store = StateStore(tmp_path / "state.json")
    store.save({"soc": 40.0})

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    assert not store.save({"soc": 41.0})
    assert store.failures == 1 and "No space" in store.last_error
    monkeypatch.undo()
    assert store.load() == {"soc": 40.0}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    assert store.save({"soc": 41.0})
    assert store.load() == {"soc": 41.0}


def test_nan_is_refused_rather_than_written(tmp_path) -> None:
    store = StateStore(tmp_path / "state.json")
    assert not store.save({"soc": float("nan")})
    assert store.load() is None
