"""Checkpoints never run code: a `.ckpt` whose pickle would execute a command is refused with one line.

Every path that reads a checkpoint (the up-front check of ``--ckpt_path``, LightningCLI's hyper-parameter
reading, the Trainer's verbs and ``generate``) uses ``torch.load(..., weights_only=True)``, whose unpickler
accepts tensors and plain containers only, so a ``__reduce__`` naming ``os.system`` is rejected before it runs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch
from conftest import REPO, assert_one_line_error, run_batch, tiny_config


class _Exploit:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A file that looks like a tangrnn checkpoint and runs code when loaded without ``weights_only``."""
    payload = {
        "state_dict": {},
        "pytorch-lightning_version": "2.6.6",
        "tangrnn": {"format": 1, "vocabulary": ["<pad>", "<bos>", "<eos>", "<unk>", "。"]},
        "hyper_parameters": {"vocab_size": 5, "architecture": "lstm", "evil": _Exploit(marker)},
    }
    torch.save(payload, path)
    return path


def test_the_crafted_file_really_would_run_code(tmp_path):
    """The exploit is real: loaded with weights_only=False it creates the marker (so the other tests mean something)."""
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.ckpt", marker)
    torch.load(path, map_location="cpu", weights_only=False)
    assert marker.exists()


def test_weights_only_refuses_it_in_process(tmp_path):
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

    from tangrnn_core.checkpoint_files import check_checkpoint
    from tangrnn_core.checkpointing import AtomicCheckpointIO
    from tangrnn_core.errors import CheckpointError

    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.ckpt", marker)
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        check_checkpoint(path)
    for io in (TorchCheckpointIO(), AtomicCheckpointIO()):
        with pytest.raises(Exception, match="(?i)unsupported global"):
            io.load_checkpoint(path, weights_only=True)
    assert not marker.exists()


def test_validate_and_generate_refuse_it_with_one_line_and_run_nothing(tmp_path, small_corpus):
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "evil.ckpt", marker)
    config = tiny_config(tmp_path, small_corpus)
    cases = {
        "validate": {"argv": ["validate", "--config", str(config), "--ckpt_path", str(path)]},
        "generate": {"argv": ["generate", "--ckpt_path", str(path), "--form", "五绝", "--num_poems", "1"]},
        "fit": {"argv": ["fit", "--config", str(config), "--ckpt_path", str(path)]},
    }
    results = run_batch(cases, tmp_path)
    for name, result in results.items():
        assert_one_line_error(result, "evil.ckpt")
        assert result.returncode == 2, name
        assert not marker.exists(), name
    assert not (tmp_path / "runs").exists()  # refused before anything was trained or written


def test_no_checkpoint_is_ever_loaded_with_weights_only_false():
    """Every torch.load and load_from_checkpoint in the package and its plugins passes weights_only=True, and
    weights_only=False appears only where a checkpoint is *saved* in full (``save_checkpoint``)."""
    sources = [*(REPO / "tangrnn_core").rglob("*.py"), *(REPO / "plugins").rglob("*.py")]
    assert sources
    offenders, loads = [], []
    for source in sources:
        text = source.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            if re.search(r"weights_only\s*=\s*False", line) and "save_checkpoint(" not in line:
                offenders.append(f"{source}:{number}: {line.strip()}")
        for match in re.finditer(r"(?:torch\.load|load_from_checkpoint)\(([^)]*)\)", text):
            loads.append((source, match.group(1)))
    assert not offenders, offenders
    unsafe = [f"{source}: {args}" for source, args in loads if not re.search(r"weights_only\s*=\s*True", args)]
    assert not unsafe, unsafe
    trainer = (REPO / "tangrnn_core" / "trainer.py").read_text(encoding="utf-8")
    # The Trainer's four verbs hand weights_only=True to Lightning's checkpoint connector.
    assert trainer.count("weights_only=True") >= 5


def test_the_refusal_says_the_file_holds_pickled_code(tmp_path):
    from tangrnn_core.checkpoint_files import check_checkpoint
    from tangrnn_core.errors import CheckpointError

    path = malicious_checkpoint(tmp_path / "evil.ckpt", tmp_path / "pwned")
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        check_checkpoint(path)
