"""Every refusal of the server as one JSON shape: ``{"error": "<one line>", "field": "<name or null>"}``.

A bad option gets the words the command line prints for it (tangrnn's :class:`~tangrnn_core.errors.ConfigError`
messages name their flag: ``top_p must be in (0, 1], got 0``), with the field it names; a body pydantic refuses
(a wrong type, an unknown field) gets one line in the same style. Only a bug is a 500, and it is logged.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

__all__ = ["JSON", "ServeError", "field_named", "install_handlers", "validation_error"]

log = logging.getLogger("tangrnn.serve")


class JSON(JSONResponse):
    """JSON as UTF-8 (poems stay readable), with any lone surrogate a client sent escaped (``\\ud800``, valid
    JSON) rather than failing to encode: no body can turn an answer into a 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


class ServeError(Exception):
    """A request the server refuses, with its status, one line and the field at fault.

    Args:
        status: the HTTP status (422 a bad option, 413 a body too large, 503/504 busy or too slow).
        message: what is wrong and how to fix it, in one line.
        field: the body's field at fault, if one is.
    """

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def field_named(message: str, fields: Iterable[str], given: Iterable[str] = ()) -> str | None:
    """The field a command-line message is about.

    Messages name their flags (``--prefix has characters ...``, ``num_beams must be ...``), some of them several
    (``an acrostic needs a line length: add --form``): the first one named that the body set is the one at fault,
    else the first one named.

    Args:
        message: a :class:`ConfigError` message.
        fields: the body's field names.
        given: the fields the body set.
    """
    # "first line" names first_line too: messages say it in words as often as by flag.
    patterns = {name: rf"(?<![\w-])(?:--)?{name.replace('_', '[_ ]')}\b" for name in fields}
    named = sorted(
        (match.start(), name) for name, pattern in patterns.items() if (match := re.search(pattern, message))
    )
    chosen = set(given)
    for _, name in named:
        if name in chosen:
            return name
    return named[0][1] if named else None


def validation_error(error: RequestValidationError) -> ServeError:
    """The first problem pydantic found in a body, as a 422 in the command line's style."""
    first = error.errors()[0] if error.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    field = location[0] if location else None
    kind = first.get("type", "")
    if kind == "json_invalid":
        return ServeError(422, "the body is not valid JSON; send a JSON object", None)
    if kind == "model_attributes_type" or (kind.endswith("_type") and field is None):
        return ServeError(422, 'the body must be a JSON object of options, e.g. {"form": "五绝"}', None)
    if kind == "extra_forbidden":
        return ServeError(422, f"unknown field {field!r}; GET /openapi.json lists the fields", field)
    if kind == "missing" and field is None:
        return ServeError(422, "the body is empty; send a JSON object of options, e.g. {}", None)
    if kind == "missing":
        return ServeError(422, f"{field} is required", field)
    got = _shorten(repr(first.get("input")))
    reason = str(first.get("msg", "is invalid"))
    reason = reason[0].lower() + reason[1:] if reason else reason
    return ServeError(422, f"{field}: {reason}, got {got}", field)


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _body(message: str, field: str | None) -> dict[str, Any]:
    return {"error": message, "field": field}


def install_handlers(app: FastAPI) -> None:
    """Answers refusals, routing errors and bugs on ``app`` in the one JSON shape."""

    @app.exception_handler(ServeError)
    async def refused(request: Request, error: ServeError) -> JSON:
        return JSON(_body(error.message, error.field), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSON:
        refusal = validation_error(error)
        return JSON(_body(refusal.message, refusal.field), status_code=refusal.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSON:
        return JSON(_body(str(error.detail), None), status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSON:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        message = f"internal error ({type(error).__name__}); this is a bug in tangrnn serve, see the server's log"
        return JSON(_body(message, None), status_code=500)
