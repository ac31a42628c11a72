"""Reading requests safely: size-limited JSON bodies and typed query parameters.

Every problem is an ApiError with a status and a reason that the client gets as
{"error": "..."}.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request

MAX_BODY_BYTES = 64 * 1024


class ApiError(Exception):
    """A request the API refuses: HTTP status and a reason for the user."""

    def __init__(self, status: int, reason: str, **extra: Any) -> None:
        self.status = status
        self.reason = reason
        self.extra = extra
        super().__init__(reason)


async def json_body(request: Request, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request's JSON object. An empty body counts as {}.

    415 for a body that is not application/json, 413 beyond `limit` bytes (checked on the
    declared length and on what actually arrives), 400 for malformed JSON or a non-object.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "malformed Content-Length")
        if int(declared) > limit:
            raise ApiError(413, f"request body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body larger than {limit} bytes")
    if not body:
        return {}
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(415, "the body must be JSON (Content-Type: application/json)")
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None
    except RecursionError:  # `[[[[...`: a 400 like any other malformed body, never a 500
        raise ApiError(400, "malformed JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (Python's json accepts them): refuse them."""
    raise ValueError(f"{name} is not a number JSON allows")


def only(body: dict[str, Any], *allowed: str) -> None:
    """400 naming the first field that is not one of `allowed`."""
    for key in body:
        if key not in allowed:
            raise ApiError(400, f"{key}: unknown field (expected: {', '.join(allowed) or 'none'})")


def integer(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if value is None:
        raise ApiError(400, f"{key}: missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{key}: must be an integer, got {value!r}")
    return value


def number(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if value is None:
        raise ApiError(400, f"{key}: missing")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, f"{key}: must be a finite number, got {value!r}")
    return float(value)


def choice(body: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = body.get(key)
    if value not in choices:
        raise ApiError(400, f"{key}: must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def query_number(request: Request, key: str, default: float) -> float:
    """A finite number from the query string (or the default when absent)."""
    text = request.query_params.get(key)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"{key}: must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ApiError(400, f"{key}: must be finite")
    return value


def query_count(request: Request, key: str, default: int, text: str | None = None) -> int:
    """A non-negative integer from the query string (or `text`, or the default)."""
    if text is None:
        text = request.query_params.get(key)
    if text is None or text == "":
        return default
    if not text.isdigit() or len(text) > 18:
        raise ApiError(400, f"{key}: must be a non-negative integer, got {text!r}")
    return int(text)
