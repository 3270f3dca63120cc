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


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _two_nodes(*argv: str, port: int, timeout: float = 600) -> list:
    """``python -m torch.distributed.run`` twice on this machine, as two nodes of one process each meeting at
    a c10d rendezvous on 127.0.0.1 (gloo on the CPU), each running ``tangrnn *argv``; returns both results."""
    import os
    import subprocess
    import sys

    # The rendezvous store lives in this process, not in one of the agents: an agent that hosts it and finishes
    # first would take it away while the other agent is still leaving the rendezvous (a DistNetworkError).
    store = torch.distributed.TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False)  # noqa: F841
    agent = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", f"tangrnn-{port}",
        "--rdzv-conf", "is_host=false",
        "-m", "tangrnn_core", *argv, "--trainer.num_nodes", "2", "--trainer.devices", "1",
        "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen(agent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in "ab"]
    results = []
    for node in nodes:
        stdout, stderr = node.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(agent, node.returncode, stdout, stderr))
    return results


def test_two_torchrun_nodes_train_checkpoint_once_and_validate_as_one_process(tmp_path, small_corpus):
    """The multi-node path for real: two torchrun agents (two "nodes" of one process each) train a few steps
    and write one checkpoint; validating it on the two nodes gives the one-process perplexity."""
    config = tiny_config(tmp_path, small_corpus, max_steps=4, limit_val_batches=1.0, val_check_interval=2)
    trained = _two_nodes("fit", "--config", str(config), port=free_port())
    assert [result.returncode for result in trained] == [0, 0], trained[0].stderr[-3000:] + trained[1].stderr[-3000:]
    checkpoints = sorted((tmp_path / "runs").rglob("last.ckpt"))
    assert len(checkpoints) == 1  # rank 0 of node 0 alone writes
    assert torch.load(checkpoints[0], weights_only=True)["global_step"] == 4
    odd = ["--data.batch_size", "20", "--ckpt_path", str(checkpoints[0])]
    single = run_tangrnn("validate", "--config", str(config), *odd, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    double = _two_nodes("validate", "--config", str(config), *odd, port=free_port())
    assert [result.returncode for result in double] == [0, 0], double[0].stderr[-3000:]
    printed = [result for result in double if "val/ppl" in result.stdout]
    assert len(printed) >= 1
    one, two = validation_perplexity(single.stdout), validation_perplexity(printed[0].stdout)
    assert abs(two - one) < 1e-3 * one, (one, two)
