"""The JSON API against a real GatewayCore fed with node frames: values, token, bad input."""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.contracts.snapshot import ProtectionKind
from gateway.web.app import build_app
from gateway.web.openapi import document
from tests.web.bench import Bench, BenchHost
from tests.web.conftest import AUTH, T0, TOKEN, client_for

pytestmark = pytest.mark.anyio


# ---------------------------------------------------------------------------- reading


async def test_status_matches_the_core(warm_bench: Bench) -> None:
    core = warm_bench.core
    async with client_for(BenchHost(warm_bench)) as client:
        response = await client.get("/api/status")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    s = response.json()
    snap = core.snapshot
    assert s["time"] == warm_bench.now
    assert s["soc"] == round(core.soc_state.soc, 1)
    assert s["voltage"] == round(snap.voltage, 2)
    assert s["current"] == round(snap.current, 1)
    assert s["power_w"] == round(snap.voltage * snap.current)
    assert core.decision is not None
    assert s["phase"] == core.decision.phase.value
    assert s["strings_online"] == 2
    sent = core.sent
    assert sent is not None
    assert s["limits"]["sent"] == {
        "cvl": round(sent.cvl, 1),
        "ccl": round(sent.ccl, 1),
        "dcl": round(sent.dcl, 1),
        "dvl": round(sent.dvl, 1),
    }
    assert s["limits"]["decided"]["cvl"] == round(core.decision.limits.cvl, 2)
    assert {a["alarm"] for a in s["alarms"]} == {a.value for a in core.decision.alarms}
    assert s["cells"]["min"] == round(snap.min_cell, 3)
    assert s["cells"]["max_at"] == {"node": snap.max_cell_at.node, "cell": snap.max_cell_at.cell}
    assert s["inverter"] == {"profile": "pylontech", "keepalive": "ok"}
    assert s["events_count"] == core.events.count
    assert s["counters"]["battery"]["received"] == core.battery_counters.received


async def test_an_untrusted_soc_is_flagged_with_its_uncertainty_and_sent_low(bench: Bench) -> None:
    """A fresh gateway's SoC comes from the voltage under load: the page and the API say it
    is not trusted and by how much it may be off; the inverter gets the low end (issue 14)."""
    core = bench.core
    async with client_for(BenchHost(bench)) as client:
        s = (await client.get("/api/status")).json()
        soc = core.soc_state
        assert s["soc_trusted"] is False and s["soc_source"] == "estimate"
        assert s["soc_uncertainty"] == round(soc.uncertainty, 1) and soc.uncertainty > 10
        assert s["soc_sent"] == round(soc.soc - soc.uncertainty, 1)
        assert core.sent is not None and core.sent.soc == pytest.approx(s["soc_sent"], abs=0.1)
        assert len(s["soc_strings"]) == 2
        core.set_soc(70.0, bench.now)
        bench.run(bench.now + 30, 5.0)
        s = (await client.get("/api/status")).json()
    assert s["soc_trusted"] is True and s["soc_uncertainty"] < 1.0
    assert core.sent is not None and core.sent.soc == pytest.approx(s["soc"], abs=0.1)


async def test_nodes_show_cells_bleeding_and_faults_by_level(bench: Bench) -> None:
    bench.flags[1].warnings = frozenset({ProtectionKind.CHARGE_OVER_TEMP})
    bench.flags[1].infos = frozenset({ProtectionKind.CELL_OVER_VOLTAGE})
    bench.flags[3].faults = frozenset({ProtectionKind.CELL_UNDER_VOLTAGE})
    bench.step(bench.now + 3.0)  # the debounce: up to three node cycles
    async with client_for(BenchHost(bench)) as client:
        nodes = (await client.get("/api/nodes")).json()["nodes"]
    assert [n["node"] for n in nodes] == [0, 1, 2, 3]
    for n in nodes:
        rec = bench.core.model.nodes[n["node"]]
        assert n["cells"] == [round(v, 3) for v in rec.cell_voltages(bench.now, 3.0)]
        assert n["cell_count"] == 16
        assert n["bleeding"] == [k + 1 for k in range(16) if rec.bleeding >> k & 1]
        assert len(n["temperatures"]) == 4
        assert n["info"]["firmware"] == "0.1.0"
        assert n["info"]["chemistry"] == "lfp"
    # The firmware raises every level a reading has passed: a warning comes with its info.
    assert nodes[1]["faults"] == [
        {"kind": "ChargeOverTemp", "level": "warning"},
        {"kind": "CellOverVoltage", "level": "info"},
        {"kind": "ChargeOverTemp", "level": "info"},
    ]
    assert nodes[3]["faults"] == [
        {"kind": "CellUnderVoltage", "level": "fault"},
        {"kind": "CellUnderVoltage", "level": "warning"},
        {"kind": "CellUnderVoltage", "level": "info"},
    ]
    assert nodes[3]["state"] == "tripped"
    assert nodes[3]["relay"] == "open"
    assert nodes[0]["state"] == "active" and nodes[0]["relay"] == "closed"
    assert nodes[2]["string"] == 1


async def test_a_silent_node_shows_no_stale_values(bench: Bench) -> None:
    silent_since = bench.now
    for t in (1.0, 2.0, 3.0, 4.0):  # longer than the node timeout (3 s)
        bench.step(silent_since + t, silent=frozenset({2}))
    async with client_for(BenchHost(bench)) as client:
        nodes = (await client.get("/api/nodes")).json()["nodes"]
        status = (await client.get("/api/status")).json()
    node2 = nodes[2]
    assert node2["present"] is False
    assert node2["voltage"] is None
    assert node2["cells"] == [None] * 16
    assert node2["age_s"] == 4.0
    assert status["strings_online"] == 1
    assert "node_missing" in {a["alarm"] for a in status["alarms"]}


async def test_status_shows_a_simulated_serial_pack_as_its_bms_reports_it() -> None:
    jk = {"source": "jk", "port": "/dev/ttyUSB0"}
    bench = Bench(now=T0, strings=[[0], [1]], extra={"battery": {"packs": {1: jk}}})
    bench.step(T0 + 30)
    async with client_for(BenchHost(bench)) as client:
        status = (await client.get("/api/status")).json()
    [pack] = status["packs"]
    physics = bench.sim.battery.packs[1]
    assert pack["pack"] == 1 and pack["source"] == "jk"
    assert pack["present"] and pack["state"] == "active"
    assert pack["charge_on"] is True and pack["discharge_on"] is True
    assert pack["voltage"] == pytest.approx(physics.voltage, abs=0.1)
    assert pack["cells"] == pytest.approx(physics.cell_voltages(), abs=0.002)
    assert status["strings_online"] == 2


async def test_history_and_events_since(warm_bench: Bench) -> None:
    core = warm_bench.core
    async with client_for(BenchHost(warm_bench)) as client:
        full = (await client.get("/api/history")).json()
        times = full["columns"]["time"]
        later = (await client.get("/api/history", params={"since": times[-3]})).json()
        events = (await client.get("/api/events")).json()
        newer = (await client.get("/api/events", params={"since": events["count"] - 1})).json()
    assert full["interval_s"] == core.history.interval
    assert times == [s.time for s in core.history.samples]
    assert full["columns"]["soc"][-1] == round(core.history.samples[-1].soc, 4)
    assert later["columns"]["time"] == times[-2:]
    assert events["count"] == core.events.count
    assert [e["seq"] for e in events["events"]] == list(range(1, core.events.count + 1))
    assert events["events"][0]["kind"] == "start"
    assert newer["events"] == events["events"][-1:]


async def test_bad_query_parameters_are_400(client: httpx.AsyncClient) -> None:
    for path, params in (
        ("/api/history", {"since": "soon"}),
        ("/api/history", {"since": "nan"}),
        ("/api/events", {"since": "-1"}),
    ):
        response = await client.get(path, params=params)
        assert response.status_code == 400
        assert "since" in response.json()["error"]


async def test_unknown_paths_and_methods_answer_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found"}
    wrong = await client.delete("/api/status")
    assert wrong.status_code == 405
    assert "error" in wrong.json()


# ---------------------------------------------------------------------------- the token


async def test_actions_need_the_token(bench: Bench, client: httpx.AsyncClient) -> None:
    count = bench.core.events.count
    missing = await client.post("/api/actions/full-charge", json={})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "API token" in missing.json()["error"]
    wrong = await client.post(
        "/api/actions/full-charge", json={}, headers={"Authorization": f"Bearer {TOKEN}x"}
    )
    assert wrong.status_code == 403
    assert wrong.json() == {"error": "wrong API token"}
    basic = await client.post(
        "/api/actions/full-charge", json={}, headers={"Authorization": f"Basic {TOKEN}"}
    )
    assert basic.status_code == 403
    assert bench.core.events.count == count  # nothing happened
    assert (await client.get("/api/auth")).status_code == 401
    assert (await client.get("/api/auth", headers=AUTH)).json() == {"ok": True}

    right = await client.post("/api/actions/full-charge", json={}, headers=AUTH)
    assert right.status_code == 200
    assert right.json() == {"ok": True, "message": "full charge requested", "event": count + 1}
    assert bench.core.events.events[-1].message == "full charge requested"


async def test_without_a_token_everything_is_read_only(bench: Bench) -> None:
    async with client_for(BenchHost(bench), token=None) as client:
        assert (await client.get("/api/status")).status_code == 200
        response = await client.post("/api/actions/full-charge", json={}, headers=AUTH)
    assert response.status_code == 403
    assert "no API token" in response.json()["error"]


async def test_relay_reset_and_soc_reach_the_core(bench: Bench, client: httpx.AsyncClient) -> None:
    core = bench.core
    r = await client.post("/api/actions/relay", json={"node": 1, "action": "open"}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "relay open requested for node 1"
    assert (core.events.events[-1].message, core.events.events[-1].node) == (
        "relay open requested",
        1,
    )
    r = await client.post("/api/actions/reset", json={"node": 2}, headers=AUTH)
    assert r.status_code == 200
    assert core.events.events[-1].message == "fault reset requested"
    r = await client.post("/api/actions/soc", json={"soc": 42.5}, headers=AUTH)
    assert r.status_code == 200
    assert core.soc_state.soc == 42.5
    status = (await client.get("/api/status")).json()
    assert status["soc"] == 42.5


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/api/actions/relay", {"node": 1, "action": "toggle"}, "action: must be one of open"),
        ("/api/actions/relay", {"node": "1", "action": "open"}, "node: must be an integer"),
        ("/api/actions/relay", {"node": True, "action": "open"}, "node: must be an integer"),
        ("/api/actions/relay", {"action": "open"}, "node: missing"),
        ("/api/actions/relay", {"node": 9, "action": "open"}, "node 9 is not configured"),
        ("/api/actions/reset", {"node": 1, "force": True}, "force: unknown field"),
        ("/api/actions/soc", {"soc": 150}, "soc: must be within 0..100"),
        ("/api/actions/soc", {"soc": "full"}, "soc: must be a finite number"),
        ("/api/actions/soc", {}, "soc: missing"),
        ("/api/actions/full-charge", {"now": 1}, "now: unknown field"),
    ],
)
async def test_bad_actions_are_400_with_the_reason(
    bench: Bench, client: httpx.AsyncClient, path: str, body: dict[str, object], reason: str
) -> None:
    count = bench.core.events.count
    response = await client.post(path, json=body, headers=AUTH)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert bench.core.events.count == count


async def test_malformed_bodies(client: httpx.AsyncClient) -> None:
    json_headers = {**AUTH, "Content-Type": "application/json"}
    r = await client.post("/api/actions/soc", content=b'{"soc": ', headers=json_headers)
    assert r.status_code == 400
    assert r.json()["error"].startswith("malformed JSON")
    r = await client.post("/api/actions/soc", content=b"[50]", headers=json_headers)
    assert r.status_code == 400
    assert r.json()["error"] == "the body must be a JSON object"
    r = await client.post(
        "/api/actions/soc",
        content=b"soc=50",
        headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    r = await client.post("/api/actions/soc", content=b"\xff\xfe", headers=json_headers)
    assert r.status_code == 400


async def test_oversized_bodies_are_413(bench: Bench) -> None:
    big = json.dumps({"soc": 50, "pad": "x" * 70_000}).encode()
    async with client_for(BenchHost(bench)) as client:
        declared = await client.post(
            "/api/actions/soc", content=big, headers={**AUTH, "Content-Type": "application/json"}
        )
        assert declared.status_code == 413
        assert "larger than 65536 bytes" in declared.json()["error"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for i in range(0, len(big), 8192):
                yield big[i : i + 8192]

        streamed = await client.post(
            "/api/actions/soc",
            content=chunks(),
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert streamed.status_code == 413
    assert bench.core.soc_state.soc != 50


# ---------------------------------------------------------------------------- the app


async def test_guard_answers_only_expected_hosts_and_sets_headers(bench: Bench) -> None:
    app = build_app(BenchHost(bench), TOKEN, allowed_hosts={"127.0.0.1", "localhost", "::1"})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as client:
        ok = await client.get("/api/status")
        v6 = await client.get("/api/status", headers={"Host": "[::1]:8080"})
        rebound = await client.get("/api/status", headers={"Host": "evil.example:8080"})
        page = await client.get("/")
    assert ok.status_code == 200 and v6.status_code == 200
    assert rebound.status_code == 421
    assert "evil.example" in rebound.json()["error"]
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"


async def test_page_and_assets_are_served_and_self_contained(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert {"/static/app.js", "/static/app.css", "/static/favicon.svg"} <= set(assets)
    for path in assets:
        asset = await client.get(path)
        assert asset.status_code == 200, path
        # Offline: nothing is loaded from elsewhere (the SVG namespace is a name, not a load).
        text = asset.text.replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"https?://", text), path
    assert "<script>" not in page.text  # no inline script (the CSP forbids it)
    missing = await client.get("/static/nothing.js")
    assert missing.status_code == 404


async def test_openapi_describes_every_route(bench: Bench) -> None:
    app = build_app(BenchHost(bench), TOKEN)
    routes = {
        (r.path, m)
        for r in app.app.routes  # type: ignore[attr-defined]
        if r.path.startswith("/api/")
        for m in (r.methods or ())
        if m != "HEAD"
    }
    doc = document()
    described = {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops}
    assert routes == described
    json.dumps(doc)  # serialisable as served
    async with client_for(BenchHost(bench)) as client:
        assert (await client.get("/api/openapi.json")).json() == doc


async def test_nan_never_reaches_json(bench: Bench) -> None:
    fresh = Bench(now=bench.now)  # no frames yet: everything unknown
    async with client_for(BenchHost(fresh)) as client:
        status = (await client.get("/api/status")).json()
        nodes = (await client.get("/api/nodes")).json()["nodes"]
    assert status["voltage"] is None and status["soc"] is not None
    assert status["phase"] is None
    assert status["limits"]["sent"] is None
    assert nodes[0]["age_s"] is None
    assert math.isfinite(status["time"])
