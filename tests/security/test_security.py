"""Security checks: who can reach the gateway, who can act, what files reveal, what input
can do.

Written against the running code rather than lists kept by hand: the action routes are
read from the app itself, so a new route without the token check fails here.
"""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from gateway.config.sections import WebSettings
from gateway.record.persist import StateStore
from gateway.web import auth
from gateway.web.app import build_app
from gateway.web.parse import MAX_BODY_BYTES
from gateway.web.server import bind, is_loopback
from tests.common import ROOT
from tests.web.bench import Bench, BenchHost
from tests.web.conftest import AUTH, T0, TOKEN

pytestmark = pytest.mark.anyio

READ_ONLY = {"GET", "HEAD"}


def routes(app: object) -> list[tuple[str, str]]:
    """(method, path) of every route of the app (under its Guard)."""
    inner = app.app  # type: ignore[attr-defined]
    out = []
    for route in inner.routes:
        if isinstance(route, Route):
            out += [(m, route.path) for m in sorted(route.methods or ())]
    return out


def test_the_web_page_listens_on_loopback_by_default() -> None:
    host = WebSettings().host
    assert is_loopback(host)
    sock = bind(host, 0)
    try:
        assert is_loopback(sock.getsockname()[0])
    finally:
        sock.close()
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


async def test_every_action_route_needs_the_token() -> None:
    bench = Bench(now=T0, soc=0.8)
    bench.run(T0 + 30, 5.0)
    app = build_app(BenchHost(bench), TOKEN, token_file=Path("moat-bms-token"))
    actions = [(m, p) for m, p in routes(app) if m not in READ_ONLY or p == "/api/auth"]
    assert len(actions) >= 6  # relay, reset, full-charge, soc, config edit, auth
    events = bench.core.events.count
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for method, path in actions:
            body = {"node": 0, "action": "close", "soc": 50}
            missing = await client.request(method, path, json=body)
            assert missing.status_code == 401, (method, path)
            for header in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", "Bearer"):
                wrong = await client.request(
                    method, path, json=body, headers={"Authorization": header}
                )
                assert wrong.status_code == 403, (method, path, header)
            # Size limits apply to every action, checked after the token.
            big = await client.request(
                method,
                path,
                content=b"{" + b" " * MAX_BODY_BYTES + b"}",
                headers={**AUTH, "Content-Type": "application/json"},
            )
            if method not in READ_ONLY:
                assert big.status_code == 413, (method, path)
    assert bench.core.events.count == events  # nothing was done


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert auth.authorized(f"Bearer {TOKEN}", TOKEN)
    assert not auth.authorized(f"Bearer {TOKEN}x", TOKEN)
    assert calls == [(TOKEN.encode(), TOKEN.encode()), ((TOKEN + "x").encode(), TOKEN.encode())]


def test_token_and_state_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        token, created = auth.load_or_create(tmp_path / "token")
        assert created and len(token) >= auth.MIN_TOKEN_LENGTH
        state = tmp_path / "state.json"
        state.write_text("{}")
        state.chmod(0o644)  # an older, readable file is replaced by a private one
        assert StateStore(state).save({"soc": {"soc": 50.0}})
        assert StateStore(tmp_path / "sub" / "state.json").save({"soc": {"soc": 50.0}})
    finally:
        os.umask(old)
    for path in (tmp_path / "token", state, tmp_path / "sub" / "state.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# ------------------------------------------------------------------ nothing executes input

BUILTINS = {"eval", "exec", "compile", "__import__"}  # called by bare name
# The node's entry point imports its board module by a name given in code (default
# "board", frozen into the image), never by a configuration value.
ALLOWED = {("firmware/bms/main.py", "__import__")}
OS_SHELL = {"system", "popen", "execv", "execvp", "spawnv"}  # os.<name>
FORBIDDEN_MODULES = {"pickle", "marshal", "shelve", "dill"}
SAFE_YAML = {"safe_load", "safe_dump", "YAMLError"}


def product_sources() -> list[Path]:
    files = sorted((ROOT / "gateway").rglob("*.py")) + sorted((ROOT / "firmware").rglob("*.py"))
    return [f for f in files if "codec" not in f.parts]


def test_no_input_reaches_an_evaluator() -> None:
    """No eval/exec, no pickle, no unsafe YAML, no shell in the gateway or the firmware:
    configuration, frames and requests are data, never code."""
    problems = []
    for path in product_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                if (
                    isinstance(func, ast.Name)
                    and func.id in BUILTINS
                    and (str(where), func.id) not in ALLOWED
                ):
                    problems.append(f"{where}:{node.lineno}: {func.id}()")
                if (
                    isinstance(func, ast.Attribute)
                    and isinstance(func.value, ast.Name)
                    and (func.value.id, func.attr) in {("os", n) for n in OS_SHELL}
                ):
                    problems.append(f"{where}:{node.lineno}: os.{func.attr}()")
                if any(k.arg == "shell" for k in node.keywords):
                    problems.append(f"{where}:{node.lineno}: shell=")
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "yaml"
                and node.attr not in SAFE_YAML
            ):
                problems.append(f"{where}:{node.lineno}: yaml.{node.attr}")
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None) or ""
                if FORBIDDEN_MODULES & {module.split(".")[0], *(n.split(".")[0] for n in names)}:
                    problems.append(f"{where}:{node.lineno}: imports {module or names}")
    assert problems == []


def test_the_strict_configuration_loader_is_a_safe_loader() -> None:
    """gateway/config/yamlsafe.py parses configuration files with its own loader: it must stay a
    SafeLoader (no Python tags), so the test above holds for it too."""
    import yaml  # noqa: PLC0415

    from gateway.config import yamlsafe  # noqa: PLC0415

    assert issubclass(yamlsafe.StrictLoader, yaml.SafeLoader)
    with pytest.raises(yaml.YAMLError):
        yamlsafe.load("x: !!python/object/apply:os.system ['true']\n")
