"""Configuration shown and edited from the web page.

Edits are a mapping of dotted keys to values (`{"strategy.max_charge_current_a": 80}`;
null removes the key from the file, so its default applies). They are merged into the
file's own content (not into every default: the file stays as short as the user wrote
it), validated with the same schema as the file (gateway.config.root.validate: errors name the
key and the reason), and written atomically (temporary file, fsync, rename, directory
fsync) after the previous file has been kept as FILE.bak. YAML is written with safe_dump
and read with safe_load only: no configuration value can execute anything.

Nothing applies live: the gateway builds its strategy, SoC estimator and inverter profile
from the settings at start, and swapping them under a running battery would restart timers
and ramps mid-charge. The page says "restart to apply" and marks what differs.

Only the battery, timing, strategy, soc and inverter sections are editable here. The buses,
persistence and web sections decide how the gateway connects, where it writes files and who
may reach it: from a web request, a path could make the gateway overwrite any file it may
write, and an address could lock the user out. Those are edited in the file.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import os
import re
import stat
import tempfile
import threading
import time
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import annotated_types
import yaml

from gateway.config.doc import walk
from gateway.config.root import (
    MAX_CONFIG_BYTES,
    ConfigError,
    Settings,
    dump,
    parse_yaml,
    validate,
)

EDITABLE_SECTIONS = ("battery", "timing", "strategy", "soc", "inverter")
KEY_PART = re.compile(r"[a-z_][a-z0-9_]*")
MAX_CHANGES = 200


class EditError(ValueError):
    """Edits that cannot be applied; `problems` name the keys and reasons."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def merge(raw: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The file content `raw` with the dotted-key `changes` applied (null removes a key).

    Pure: raises EditError naming every key that is malformed, not editable on the web
    page, or lies under a plain value. Whether the values are valid is for validate().
    """
    if not changes:
        raise EditError(["no changes given"])
    if len(changes) > MAX_CHANGES:
        raise EditError([f"at most {MAX_CHANGES} changes at once"])
    data = copy.deepcopy(dict(raw))
    problems = []
    for key, value in changes.items():
        parts = key.split(".")
        if not all(KEY_PART.fullmatch(p) for p in parts):
            problems.append(f"{key}: not a configuration key (dotted lower-case names)")
            continue
        if parts[0] not in EDITABLE_SECTIONS:
            problems.append(
                f"{key}: not editable on the web page; edit {parts[0]} in the configuration file"
            )
            continue
        node: dict[str, Any] = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                if value is None:
                    break  # removing a key under an absent section: nothing to do
                child = node[part] = {}
            elif not isinstance(child, dict):
                problems.append(f"{key}: {'.'.join(parts[: i + 1])} is a value, not a section")
                break
            node = child
        else:
            if value is None:
                node.pop(parts[-1], None)
            else:
                node[parts[-1]] = value
    if problems:
        raise EditError(problems)
    return data


# ---------------------------------------------------------------------------- the schema


def _kind(annotation: Any) -> tuple[str, bool, list[str] | None]:
    """(input kind, None allowed, choices) of a leaf field's annotation."""
    args: tuple[Any, ...] = (annotation,)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
    optional = type(None) in args
    rest = [a for a in args if a is not type(None)]
    if len(rest) == 1 and isinstance(rest[0], type):
        kind = rest[0]
        if issubclass(kind, enum.Enum):
            return "enum", optional, [str(m.value) for m in kind]
        for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
            if kind is t:
                return name, optional, None
    return "json", optional, None  # lists, tables, mappings, paths, unions: edited as JSON


def _bounds(metadata: list[Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in metadata:
        for cls, name in (
            (annotated_types.Ge, "ge"),
            (annotated_types.Gt, "gt"),
            (annotated_types.Le, "le"),
            (annotated_types.Lt, "lt"),
        ):
            if isinstance(m, cls):
                out[name] = getattr(m, name)
    return out


def _at(data: Mapping[str, Any] | None, path: tuple[str, ...]) -> Any:
    value: Any = data
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def fields(configured: Settings, running: Settings) -> list[dict[str, Any]]:
    """Every setting for the page: key, description, kind, bounds, default, the value in the
    file (`value`), the value in force (`running`) and whether the page may edit it."""
    defaults, file_data, running_data = dump(Settings()), dump(configured), dump(running)
    out = []
    for path, info, nested, _ in walk(Settings, Settings()):
        if nested is not None:
            continue
        kind, optional, choices = _kind(info.annotation)
        out.append(
            {
                "key": ".".join(path),
                "section": path[0],
                "description": info.description or "",
                "kind": kind,
                "optional": optional,
                "choices": choices,
                "bounds": _bounds(info.metadata),
                "default": _at(defaults, path),
                "value": _at(file_data, path),
                "running": _at(running_data, path),
                "editable": path[0] in EDITABLE_SECTIONS,
            }
        )
    return out


def pending(configured: Settings, running: Settings) -> list[str]:
    """Editable keys whose value in the file differs from the one in force."""
    file_data, running_data = dump(configured), dump(running)
    out = []
    for path, _, nested, _ in walk(Settings, Settings()):
        if (
            nested is None
            and path[0] in EDITABLE_SECTIONS
            and (_at(file_data, path) != _at(running_data, path))
        ):
            out.append(".".join(path))
    return out


# ---------------------------------------------------------------------------- the file


def read_raw(path: Path) -> tuple[dict[str, Any], bytes]:
    """The file's parsed content (a mapping) and its bytes. Raises ConfigError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, b""
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(str(path), [f"file is larger than {MAX_CONFIG_BYTES} bytes"])
    data = parse_yaml(raw, str(path))
    if data is None:
        return {}, raw
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["the file must contain a mapping of sections"])
    return data, raw


def render(data: Mapping[str, Any], backup: Path) -> str:
    """The YAML text of an edited file, with a header saying where the previous one is."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
    header = (
        f"# moat-bms gateway configuration, saved from the web page on {stamp}.\n"
        f"# The previous file (with its comments) is kept as {backup.name}.\n"
        "# Reference: docs/configuration.md; check with: moat-bms config check FILE\n"
    )
    body = (
        yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, default_flow_style=False)
        if data
        else ""
    )
    return header + body


def write_atomically(path: Path, content: bytes, mode: int) -> None:
    """Replace `path` by `content`: a crash leaves the old or the new file, never a torn one."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


class ConfigFile:
    """The configuration file behind the running gateway. Blocking: call from a worker
    thread (anyio.to_thread). Edits are serialised, so two at once cannot lose one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # The last parse, keyed by the file's identity: GET /api/config needs no token, so
        # it must not make the gateway re-read and re-parse the file on every request.
        self._cached: tuple[object, Settings | ConfigError] | None = None
        self.parses = 0

    def _identity(self) -> object:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def load(self) -> Settings:
        """The settings in the file now (raises ConfigError); parsed again only when the
        file changed."""
        with self._lock:
            identity = self._identity()
            cached = self._cached
            if cached is None or identity is None or cached[0] != identity:
                self.parses += 1
                result: Settings | ConfigError
                try:
                    data, _ = read_raw(self.path)
                    result = validate(data, str(self.path))
                except ConfigError as exc:
                    result = exc
                cached = self._cached = (identity, result)
            if isinstance(cached[1], ConfigError):
                raise cached[1]
            return cached[1]

    def edit(self, changes: Mapping[str, Any]) -> Settings:
        """Apply `changes`, validate, keep the old file as FILE.bak and write the new one.

        Raises EditError or ConfigError (nothing is written then) or OSError.
        """
        with self._lock:
            data, previous = read_raw(self.path)
            merged = merge(data, changes)
            settings = validate(merged, "configuration")
            backup = backup_path(self.path)
            text = render(merged, backup).encode()
            if len(text) > MAX_CONFIG_BYTES:
                raise EditError([f"the file would be larger than {MAX_CONFIG_BYTES} bytes"])
            try:
                mode = stat.S_IMODE(self.path.stat().st_mode)
            except FileNotFoundError:
                mode = 0o644
            if previous:
                write_atomically(backup, previous, mode)
            write_atomically(self.path, text, mode)
            self._cached = None
            return settings
