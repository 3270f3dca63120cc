"""Writing poems for a request: the one decoding call of the server, one at a time, within a time limit.

:func:`write_with` is the only place the server decodes; it calls the decoder of ``tangrnn generate``
(:func:`~tangrnn_core.decoding.write.write_poems`), so the same request and seed give the same poems. A later
increment that batches concurrent requests (or moves to another serving library) replaces what is behind
:class:`DecodeGate`, not the routes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.decoding.write import write_poems
from tangrnn_core.serve.model import ServedModel

__all__ = ["DecodeGate", "Busy", "TimedOut", "Writer", "write_with"]

#: What the gate runs: the poems of one request.
Writer = Callable[[PoemRequest], list[str]]


def write_with(model: ServedModel) -> Writer:
    """The server's decoding function for ``model``: ``tangrnn generate``'s decoder, on the CPU.

    Args:
        model: the network and vocabulary to write with.
    """

    def write(request: PoemRequest) -> list[str]:
        return write_poems(model.net, model.vocabulary, request)

    return write


class Busy(Exception):
    """Another request held the decoder for the whole time limit (answered 503)."""


class TimedOut(Exception):
    """Decoding took longer than the time limit (answered 504)."""


class DecodeGate:
    """Runs a :data:`Writer` in a worker thread, one request at a time, each within ``timeout`` seconds.

    Decoding is CPU-bound torch code: on the event loop it would stall every other connection (``/healthz``
    included), and two decodes at once would only share the same cores. The limit counts the wait for the lock
    too. A decode cannot be interrupted mid-batch, so one that overruns keeps the lock until it ends (the lock
    then says truthfully that the cores are busy); a request that timed out while waiting is dropped unrun.

    Args:
        writer: the decoding function (:func:`write_with`; tests pass slow ones).
        timeout: seconds a request may take, waiting included.
    """

    def __init__(self, writer: Writer, timeout: float) -> None:
        self.writer = writer
        self.timeout = timeout
        self._lock = threading.Lock()

    async def write(self, request: PoemRequest) -> list[str]:
        """The poems of ``request``.

        Raises:
            Busy: the decoder stayed taken for the whole time limit.
            TimedOut: the decode itself overran the limit (it finishes in the background).
            ConfigError: the decoder refused the request (and whatever else the writer raises).
        """
        deadline = time.monotonic() + self.timeout
        started, abandoned = threading.Event(), threading.Event()
        work = asyncio.to_thread(self._run, request, deadline, started, abandoned)
        try:
            return await asyncio.wait_for(work, self.timeout)
        except asyncio.TimeoutError:
            abandoned.set()
            raise (TimedOut if started.is_set() else Busy) from None

    def _run(
        self, request: PoemRequest, deadline: float, started: threading.Event, abandoned: threading.Event
    ) -> list[str]:
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise Busy
        try:
            if abandoned.is_set():  # its client has had its 503 already
                raise Busy
            started.set()
            return self.writer(request)
        finally:
            self._lock.release()
