"""The routes of ``tangrnn serve``: poems, the checker, the model, health, and the limits on every request."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import secrets
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tangrnn_core.data.forms import classify, split_lines_with_marks
from tangrnn_core.decoding.request import MAX_SEED
from tangrnn_core.errors import ConfigError
from tangrnn_core.prosody.checker import check_poem
from tangrnn_core.prosody.command import prepare_text
from tangrnn_core.serve.decoding import Batcher, BatchWriter, Busy, TimedOut, write_with
from tangrnn_core.serve.errors import JSON, ServeError, field_named, install_handlers
from tangrnn_core.serve.limits import Limits
from tangrnn_core.serve.model import ServedModel
from tangrnn_core.serve.schemas import CheckBody, PoemsBody, request_fields, to_request

__all__ = ["Limits", "create_app"]

log = logging.getLogger("tangrnn.serve")


class BodyLimit:
    """Refuses a body over ``limit`` bytes with 413, before it is read (by its Content-Length) or as it streams.

    Args:
        app: the application behind it.
        limit: bytes allowed.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            return await self._refuse(scope, send)
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:  # a chunked body with no length, or one longer than it said
                # FastAPI passes an HTTPException raised while reading the body on to its handler.
                raise HTTPException(413, self._message)
            return message

        await self.app(scope, counted, send)

    @property
    def _message(self) -> str:
        return f"the request body is over {self.limit:,} bytes ({self.limit / 1024:g} KiB); send shorter options"

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await JSON({"error": self._message, "field": None}, status_code=413)(scope, _nothing, send)


class JsonBodies:
    """Reads every body as JSON, whatever its Content-Type: ``curl -d '{...}'`` labels its data as a form
    (``application/x-www-form-urlencoded``), and FastAPI would otherwise refuse a JSON object sent that way.

    Args:
        app: the application behind it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(name, value) for name, value in scope["headers"] if name != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


def page() -> tuple[str, dict[str, str]]:
    """The poem studio (``GET /``): one HTML file shipped in the package, its style and script inline, so that it
    works offline. Its Content-Security-Policy lets it run only its own script (by hash) and speak only to this
    server. Returns the page and its headers."""
    html = resources.files("tangrnn_core.serve").joinpath("page/index.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'" for script in scripts
    )
    policy = (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html, {"content-security-policy": policy, "x-content-type-options": "nosniff"}


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def create_app(model: ServedModel, limits: Limits | None = None, writer: BatchWriter | None = None) -> FastAPI:
    """The server's application for ``model``.

    Args:
        model: the network to write with (:func:`~tangrnn_core.serve.model.load_model`).
        limits: what one request may ask (default: :class:`Limits`' defaults, those of ``tangrnn serve``).
        writer: the batch decoding function (default: :func:`~tangrnn_core.serve.decoding.write_with` ``model``).
    """
    limits = limits or Limits()
    batcher = Batcher(writer or write_with(model), limits.timeout, limits.max_batch_size)
    names = [field.name for field in request_fields()]
    app = FastAPI(
        title="tangrnn serve",
        summary="Tang poems written and checked over HTTP",
        version="1",
        default_response_class=JSON,
    )
    app.add_middleware(JsonBodies)
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)
    install_handlers(app)

    studio, studio_headers = page()

    @app.get("/", include_in_schema=False)
    async def poem_studio() -> HTMLResponse:
        """The poem studio: write, see each character's tone and the rhymes, check any poem."""
        return HTMLResponse(studio, headers=studio_headers)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Answers while the server is up (decoding runs off the event loop, so this answers during one)."""
        return {"status": "ok"}

    @app.get("/v1/model")
    async def describe_model() -> dict[str, Any]:
        """The model the server writes with (architecture, vocabulary size, parameters, model card), the server's
        limits, and how many batches and requests it has decoded."""
        served = {"batches": batcher.batches, "requests": batcher.requests}
        return {**model.describe(), "limits": limits.__dict__, "decoded": served}

    @app.post("/v1/poems")
    async def poems(body: PoemsBody) -> dict[str, Any]:  # type: ignore[valid-type]
        """Writes poems as `tangrnn generate` does (same options, same seed, same poems), each with the report
        of `tangrnn check` (form, pattern, rhyme group, the tone of every character)."""
        _check_limits(body, limits)
        seed = body.seed if body.seed is not None else secrets.randbits(62)
        try:
            request = to_request(body, seed=seed)
            written = await batcher.write(request)
        except ConfigError as error:
            raise ServeError(422, str(error), field_named(str(error), names, body.model_fields_set)) from None
        except Busy:
            raise ServeError(503, f"the decoder stayed busy for {limits.timeout:g} s; retry later") from None
        except TimedOut:
            raise ServeError(504, f"writing took over {limits.timeout:g} s; ask for fewer poems or beams") from None
        except MemoryError:
            raise ServeError(503, "out of memory; ask for fewer poems or beams") from None
        tones = request.tones if request.tones != "off" else "strict"
        # The reports are pure Python, a millisecond or two a poem: off the event loop, which keeps accepting.
        reports = await asyncio.to_thread(lambda: [_with_report(poem, tones) for poem in written])
        return {"seed": seed, "poems": reports}

    @app.post("/v1/check")
    async def check(body: CheckBody) -> dict[str, Any]:
        """Checks one poem against the rules of regulated verse, as `tangrnn check --output json` does."""
        try:
            result = check_poem(prepare_text(body.poem), tones=body.tones, strict=body.strict, pattern=body.pattern)
        except ConfigError as error:
            field = "pattern" if "pattern" in str(error) and body.pattern not in ("auto", "") else "poem"
            raise ServeError(422, str(error), field) from None
        return result.to_json()

    return app


def _check_limits(body: Any, limits: Limits) -> None:
    """Refuses what this server does not decode (count, rows, seed range) before the decoder is taken."""
    if body.num_poems > limits.max_poems:
        raise ServeError(
            422, f"num_poems must be at most {limits.max_poems} on this server, got {body.num_poems}", "num_poems"
        )
    if body.num_beams * body.num_poems > limits.max_batch_size:
        raise ServeError(
            422,
            f"num_beams x num_poems must be at most {limits.max_batch_size} on this server, got "
            f"{body.num_beams} x {body.num_poems}; lower num_beams or num_poems",
            "num_beams",
        )
    if body.seed is not None and not 0 <= body.seed <= MAX_SEED:
        raise ServeError(422, f"seed must be from 0 to {MAX_SEED}, got {body.seed}", "seed")


def _with_report(poem: str, tones: str) -> dict[str, Any]:
    """A written poem with its verses, its form and `tangrnn check`'s report (``null`` with the reason for a poem
    of no regular form)."""
    record: dict[str, Any] = {"poem": poem, "lines": split_lines_with_marks(poem), "form": classify(poem).value}
    try:
        record["check"] = check_poem(poem, tones=tones).to_json()
    except ConfigError as error:
        record["check"], record["check_error"] = None, str(error)
    return record
