"""What one request may ask of a server (``tangrnn serve``'s --max_poems, --max_batch_size, --timeout).

A module of its own, importing nothing heavy, so that ``tangrnn serve --help`` shows the defaults without
importing torch or FastAPI.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server.

    Args:
        max_poems: poems per request.
        max_batch_size: rows (poems times beams) of one batch of the decoder, which requests that arrive
            together share; one request may take them all.
        timeout: seconds a request may take, the wait for the decoder included.
        max_body_bytes: bytes of a request body (larger: 413).
    """

    max_poems: int = 64
    max_batch_size: int = 256
    timeout: float = 60.0
    max_body_bytes: int = 64 * 1024
