"""The API described as an OpenAPI 3.1 document, served at /api/openapi.json.

Written by hand next to the handlers (gateway/web/api.py); a test checks that every route
of the app is described here and every path described here exists.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

BEARER: list[Json] = [{"token": []}]


def _error(description: str) -> Json:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(description: str, schema: Json | None = None) -> Json:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


ERRORS = {
    "400": _error("malformed request, or a value out of range; the reason names the field"),
    "401": _error("no Authorization header: this needs the API token"),
    "403": _error("wrong token, or no token set up on the gateway"),
    "413": _error("request body larger than 64 KiB"),
    "415": _error("the body is not application/json"),
}


def _action(summary: str, description: str, properties: Json, required: list[str]) -> Json:
    body: Json = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return {
        "post": {
            "summary": summary,
            "description": description,
            "security": BEARER,
            "requestBody": {
                "required": bool(required),
                "content": {"application/json": {"schema": body}},
            },
            "responses": {"200": _ok("accepted", {"$ref": "#/components/schemas/Done"}), **ERRORS},
        }
    }


def _get(summary: str, description: str, parameters: list[Json] | None = None) -> Json:
    op: Json = {"summary": summary, "description": description, "responses": {"200": _ok(summary)}}
    if parameters:
        op["parameters"] = parameters
        op["responses"]["400"] = ERRORS["400"]
    return {"get": op}


def _query(name: str, kind: str, description: str) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": kind},
    }


NODE = {"type": "integer", "minimum": 0, "maximum": 15, "description": "node id"}


def document() -> Json:
    """The OpenAPI document of the gateway's HTTP API."""
    config = _get(
        "Configuration",
        "Every setting with its description, kind, bounds, default, the value in the file "
        "(`value`) and the value in force (`running`); which keys are editable here and which "
        "differ from the running gateway (`pending_restart`).",
    )
    config["patch"] = {
        "summary": "Edit the configuration file",
        "description": "Dotted keys to new values; null removes a key (its default applies). "
        "Only the battery, timing, strategy, soc and inverter sections. Validated with the "
        "file's schema; saved atomically, the previous file kept as FILE.bak. Applies when "
        "the gateway restarts.",
        "security": BEARER,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": True,
                        "example": {"strategy.max_charge_current_a": 80, "soc.rest_time_s": None},
                    }
                }
            },
        },
        "responses": {
            "200": _ok("saved: the new configuration view with `saved`"),
            **ERRORS,
            "409": _error("the gateway runs on defaults: no file to save to"),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "moat-bms gateway API",
            "version": "1",
            "description": "Live battery state, history, events and configuration of a moat-bms "
            "gateway; actions need `Authorization: Bearer TOKEN` (the token file is named in "
            "the gateway's log). Values are SI units: V, A, W, degC, %, s; null is unknown. "
            "Times are the gateway's monotonic clock in seconds (it reads Unix time when the "
            "gateway starts); add status.wall_offset_s to show one as the wall clock's time.",
        },
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string"},
                        "problems": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "Done": {
                    "type": "object",
                    "properties": {
                        "ok": {"type": "boolean"},
                        "message": {"type": "string"},
                        "event": {"type": "integer", "description": "event count after it"},
                    },
                },
            },
        },
        "paths": {
            "/api/status": _get(
                "Battery summary",
                "SoC, SoH, voltage, current, power, cell and temperature extremes, charge "
                "phase, limits decided and last sent to the inverter (CVL/CCL/DCL/DVL), "
                "alarms, strings, inverter keepalive, bus counters, and each output's "
                "status (outputs: [{name, status}]).",
            ),
            "/api/nodes": _get(
                "Every node",
                "Per node: state, relay, pack voltage and current, cell voltages with the "
                "lowest and highest cell, bleeding cells, temperatures, faults with level.",
            ),
            "/api/history": _get(
                "History for charts",
                "Column arrays (time, voltage, current, soc, cvl, ccl, dcl, min_cell, "
                "max_cell, max_temp), one sample per interval_s over the last hours.",
                [_query("since", "number", "only samples after this time (s)")],
            ),
            "/api/events": _get(
                "Event log",
                "Trips, resets, phase changes, nodes lost and back, inverter missing, "
                "alarms, user actions; oldest first, each with its sequence number.",
                [_query("since", "integer", "only events after this many (a previous count)")],
            ),
            "/api/stream": _get(
                "Live updates (server-sent events)",
                "text/event-stream: an `update` event at once and every second with "
                "{status, nodes, events, history}: the new events and history samples only. "
                "The event id is the event count; Last-Event-ID resumes after a reconnect.",
                [
                    _query("events", "integer", "send events after this many"),
                    _query("history", "number", "send history samples after this time (s)"),
                ],
            ),
            "/api/config": config,
            "/api/auth": {
                "get": {
                    "summary": "Check a token",
                    "description": "200 when the request carries the right token.",
                    "security": BEARER,
                    "responses": {
                        "200": _ok("the token is right"),
                        "401": ERRORS["401"],
                        "403": ERRORS["403"],
                    },
                }
            },
            "/api/openapi.json": _get("This document", "The API as OpenAPI 3.1."),
            "/api/actions/relay": _action(
                "Request a node's relay open or closed",
                "The node still refuses to close while one of its faults is active.",
                {"node": NODE, "action": {"type": "string", "enum": ["open", "close"]}},
                ["node", "action"],
            ),
            "/api/actions/reset": _action(
                "Reset a latched fault",
                "The node clears its trip once every fault has cleared.",
                {"node": NODE},
                ["node"],
            ),
            "/api/actions/full-charge": _action(
                "Start a full charge",
                "Charge to the full-charge voltage and hold it: SoC reset and top balancing.",
                {},
                [],
            ),
            "/api/actions/soc": _action(
                "Set the state of charge",
                "Overrides the estimate (e.g. after installing a charged battery).",
                {
                    "soc": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 100,
                        "description": "state of charge, %",
                    }
                },
                ["soc"],
            ),
        },
    }
