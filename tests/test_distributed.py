"""Several processes through Lightning's DDP strategy, run from the command as a user would (DDP re-executes it)."""

from __future__ import annotations

import re

import torch
from conftest import run_tangrnn, tiny_config

from tangrnn_core.data.datamodule import PoetryDataModule


def test_ddp_on_two_cpu_processes_shards_the_epoch_and_checkpoints_once(tmp_path, small_corpus):
    config = tiny_config(tmp_path, small_corpus, max_steps=-1, max_epochs=1, val_check_interval=1.0)
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    result = run_tangrnn("fit", "--config", str(config), *ddp, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    # One epoch covers the training split once: each rank takes every other batch.
    data = PoetryDataModule(corpus=str(small_corpus), batch_size=16, val_fraction=0.1, test_fraction=0.1)
    batches = -(-len(data.split("train")) // 16)
    checkpoints = sorted((tmp_path / "runs").rglob("*.ckpt"))
    assert {path.parent.parent.name for path in checkpoints} == {"version_0"}  # written by rank 0 only
    last = torch.load(next(p for p in checkpoints if p.name == "last.ckpt"), weights_only=True)
    assert last["global_step"] == -(-batches // 2)
    assert result.stdout.count("Poems after") == 1  # samples are written on rank 0 only

    # Resuming a DDP run from its checkpoint continues it.
    resumed = run_tangrnn(
        "fit", "--config", str(config), *ddp, "--trainer.max_epochs", "2", "--ckpt_path", "last", timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    newest = max((tmp_path / "runs").rglob("last.ckpt"), key=lambda path: path.stat().st_mtime)
    assert torch.load(newest, weights_only=True)["global_step"] == 2 * -(-batches // 2)


def validation_perplexity(stdout: str) -> float:
    """The ``val/ppl`` of the metrics table that ``tangrnn validate`` prints."""
    found = re.findall(r"val/ppl\s*\S\s*([0-9.]+)", stdout)
    assert len(found) == 1, stdout
    return float(found[0])


def test_ddp_validation_metric_equals_the_single_process_one(tmp_path, small_corpus):
    """The ranks score disjoint shares of the validation split, uneven ones included, and the perplexity syncs
    across them: two processes report exactly what one process reports over the whole split."""
    config = tiny_config(tmp_path, small_corpus, max_steps=4, limit_val_batches=1.0, val_check_interval=2)
    trained = run_tangrnn("fit", "--config", str(config), timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    checkpoint = str(next((tmp_path / "runs").rglob("last.ckpt")))
    # 60 validation poems in 3 batches of 20: one rank gets two batches, the other one, and none is repeated.
    odd = ["--data.batch_size", "20"]
    single = run_tangrnn("validate", "--config", str(config), *odd, "--ckpt_path", checkpoint, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    double = run_tangrnn("validate", "--config", str(config), *odd, *ddp, "--ckpt_path", checkpoint, timeout=600)
    assert double.returncode == 0, double.stderr[-3000:]
    one, two = validation_perplexity(single.stdout), validation_perplexity(double.stdout)
    assert abs(two - one) < 1e-3 * one, (one, two)
