"""Writing poems for requests: the requests that arrive together decoded as one batch, within a time limit.

:func:`write_with` is the only place the server decodes; it calls the decoder of ``tangrnn generate``
(:func:`~tangrnn_core.decoding.write.write_together`, which gives each request the poems
:func:`~tangrnn_core.decoding.write.write_poems` writes for it alone), so the same request and seed give the
same poems. :class:`Batcher` collects the requests: one worker thread decodes; while it decodes a batch, the
requests that arrive wait, and the next batch takes all of them (up to ``max_rows``). A lone request is
decoded at once (no waiting window), and under load every batch is as full as the load makes it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.decoding.write import write_together
from tangrnn_core.serve.model import ServedModel

__all__ = ["Batcher", "Busy", "TimedOut", "BatchWriter", "decode_threads", "write_with"]

#: What the batcher runs: for each request of a batch, its poems or the exception that refused it.
BatchWriter = Callable[[Sequence[PoemRequest]], Sequence["list[str] | Exception"]]


def write_with(model: ServedModel) -> BatchWriter:
    """The server's decoding function for ``model``: ``tangrnn generate``'s decoder, requests batched.

    Args:
        model: the network and vocabulary to write with.
    """

    def write(requests: Sequence[PoemRequest]) -> Sequence[list[str] | Exception]:
        return write_together(model.net, model.vocabulary, requests)

    return write


def decode_threads(cores: int | None = None) -> int:
    """Torch threads for the decoding thread: every core but one, which the event loop keeps (HTTP, JSON and the
    checker's reports are Python). On two cores, measured (docs/serve.md): one poem decodes in 13 ms on one
    thread against 25 ms on two from a worker thread, and 64 poems in 120 ms against 109 ms.

    Args:
        cores: the cores at hand (default: ``os.cpu_count()``).
    """
    return max(1, (cores or os.cpu_count() or 1) - 1)


class Busy(Exception):
    """The decoder stayed busy with other batches for the whole time limit (answered 503)."""


class TimedOut(Exception):
    """Decoding took longer than the time limit (answered 504)."""


@dataclass
class _Pending:
    request: PoemRequest
    deadline: float
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    started: bool = False
    abandoned: bool = False
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = self.request.num_poems * self.request.num_beams

    def answer(self, result: list[str] | BaseException) -> None:
        def settle() -> None:
            if self.future.done() or self.abandoned:  # its client has had its timeout already
                return
            if isinstance(result, BaseException):
                self.future.set_exception(result)
            else:
                self.future.set_result(result)

        try:
            self.loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the loop has closed (the server is stopping): nobody waits for the answer
            pass


class Batcher:
    """Decodes requests in batches, in one worker thread, each request within ``timeout`` seconds.

    Decoding is CPU-bound torch code: on the event loop it would stall every other connection (``/healthz``
    included), and two decodes at once would only share the same cores, so one thread decodes, batch after
    batch. The limit counts the wait too. A batch cannot be interrupted, so a request whose decode overruns gets
    504 while its batch finishes in the background; one whose limit passes while it waits gets 503 and is
    dropped unrun.

    Args:
        writer: the batch decoding function (:func:`write_with`; tests pass slow ones).
        timeout: seconds a request may take, waiting included.
        max_rows: rows (poems x beams) a batch holds at most; a request alone may take them all.
        threads: torch threads of the decoding thread (default: :func:`decode_threads`).
    """

    def __init__(self, writer: BatchWriter, timeout: float, max_rows: int, threads: int | None = None) -> None:
        self.writer = writer
        self.timeout = timeout
        self.max_rows = max_rows
        self.threads = threads or decode_threads()
        self._waiting: list[_Pending] = []
        self._ready = threading.Condition()
        self._worker: threading.Thread | None = None
        #: Requests per batch decoded so far (``GET /v1/model`` reports how batches fill).
        self.batches = 0
        self.requests = 0

    async def write(self, request: PoemRequest) -> list[str]:
        """The poems of ``request``, decoded with whatever requests wait beside it.

        Raises:
            Busy: the decoder stayed taken for the whole time limit.
            TimedOut: the decode itself overran the limit (it finishes in the background).
            ConfigError: the decoder refused the request (and whatever else the writer raises).
        """
        loop = asyncio.get_running_loop()
        pending = _Pending(request, time.monotonic() + self.timeout, loop, loop.create_future())
        with self._ready:
            self._waiting.append(pending)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="tangrnn-decoder", daemon=True)
                self._worker.start()
            self._ready.notify()
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), self.timeout)
        except asyncio.TimeoutError:
            pending.abandoned = True
            raise (TimedOut if pending.started else Busy) from None

    def _next_batch(self) -> list[_Pending]:
        """Waits for requests, then takes those that fit one batch, oldest first; drops the abandoned."""
        with self._ready:
            while not self._waiting:
                self._ready.wait()
            now, batch, rows, kept = time.monotonic(), [], 0, []
            for pending in self._waiting:
                if pending.abandoned or pending.deadline <= now:
                    pending.answer(Busy())
                elif not batch or rows + pending.rows <= self.max_rows:
                    batch.append(pending)
                    rows += pending.rows
                    pending.started = True
                else:
                    kept.append(pending)
            self._waiting = kept
            return batch

    def _work(self) -> None:
        torch.set_num_threads(self.threads)  # this thread's own setting: the event loop's thread keeps its own
        while True:
            batch = self._next_batch()
            if not batch:
                continue
            try:
                results = self.writer([pending.request for pending in batch])
            except BaseException as error:  # noqa: BLE001 - every waiting client gets it; the worker lives on
                results = [error] * len(batch)
            self.batches += 1
            self.requests += len(batch)
            for pending, result in zip(batch, results):
                pending.answer(result)
