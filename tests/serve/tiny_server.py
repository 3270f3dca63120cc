"""What the serve tests share: a tiny untrained checkpoint, saved as `tangrnn fit` saves one, and a real server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import lightning.pytorch as pl

from tangrnn_core.data.datamodule import PoetryDataModule
from tangrnn_core.module import PoetryModel

#: Small enough to build and decode in a moment on two cores; untrained, so its poems depend only on the seed.
TINY = {"embedding_size": 16, "hidden_size": 24, "num_layers": 1}


def tiny_checkpoint(folder: Path, corpus: Path) -> Path:
    """An untrained LSTM over ``corpus``'s vocabulary, initialised from a fixed seed, saved under ``folder``."""
    data = PoetryDataModule(corpus=str(corpus), batch_size=16, val_fraction=0.1, test_fraction=0.1)
    pl.seed_everything(1234, verbose=False)
    model = PoetryModel(
        vocab_size=data.vocab_size, line_end_ids=data.line_end_ids, architecture="lstm", architecture_options=TINY
    )
    trainer = pl.Trainer(
        max_steps=0, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model, datamodule=data)
    path = folder / "tiny.ckpt"
    trainer.save_checkpoint(path)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(*argv: str) -> Iterator[str]:
    """``tangrnn serve *argv`` in a subprocess on a free port, once it answers ``/healthz``; yields its URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tangrnn_core", "serve", "--port", str(port), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).json() == {"status": "ok"}:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /healthz within 2 minutes"
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
