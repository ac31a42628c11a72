"""Paths and small helpers shared by the tests."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DBC_DIR = ROOT / "dbc"
FIRMWARE_DIR = ROOT / "firmware"
