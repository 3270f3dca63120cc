"""Cluster launchers: SLURM detection, as Lightning's own tests check it, and the shipped SLURM recipe."""

from __future__ import annotations

import os
import re

import pytest
from conftest import REPO
from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

from tangrnn_core.trainer import TangrnnTrainer


@pytest.fixture(autouse=True)
def _restore_environment():
    # Lightning's cluster environments write MASTER_ADDR/MASTER_PORT into os.environ themselves; left behind,
    # they would send later multi-process tests to a host that does not exist.
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


SLURM = {
    "SLURM_NTASKS": "8",
    "SLURM_NTASKS_PER_NODE": "4",
    "SLURM_NNODES": "2",
    "SLURM_JOB_NAME": "tangrnn",
    "SLURM_JOB_ID": "1234",
    "SLURM_NODELIST": "node[1-2]",
    "SLURM_PROCID": "5",
    "SLURM_LOCALID": "1",
    "SLURM_NODEID": "1",
}


def test_slurm_environment_gives_ranks_and_world_size(monkeypatch):
    for key, value in SLURM.items():
        monkeypatch.setenv(key, value)
    trainer = TangrnnTrainer(accelerator="cpu", devices=4, num_nodes=2, strategy="ddp", logger=False)
    environment = trainer._accelerator_connector.cluster_environment
    assert isinstance(environment, SLURMEnvironment)
    assert (trainer.world_size, trainer.global_rank, trainer.local_rank, trainer.node_rank) == (8, 5, 1, 1)
    assert environment.main_address == "node1"


def test_torchrun_environment_is_detected(monkeypatch):
    for key, value in {
        "TORCHELASTIC_RUN_ID": "x",
        "WORLD_SIZE": "4",
        "RANK": "3",
        "LOCAL_RANK": "1",
        "GROUP_RANK": "1",
        "MASTER_ADDR": "host",
        "MASTER_PORT": "29500",
    }.items():
        monkeypatch.setenv(key, value)
    trainer = TangrnnTrainer(accelerator="cpu", devices=2, num_nodes=2, strategy="ddp", logger=False)
    assert isinstance(trainer._accelerator_connector.cluster_environment, TorchElasticEnvironment)
    assert (trainer.world_size, trainer.global_rank) == (4, 3)


def test_slurm_recipe_matches_devices_to_tasks_and_requeues():
    script = (REPO / "configs" / "cluster" / "slurm.sbatch").read_text(encoding="utf-8")
    assert re.search(r"^#SBATCH --signal=SIGUSR1@\d+", script, re.MULTILINE)
    assert "--requeue" in script and "srun tangrnn fit" in script
    assert '--trainer.devices "$SLURM_NTASKS_PER_NODE"' in script
    assert '--trainer.num_nodes "$SLURM_NNODES"' in script
    for config in re.findall(r"--config (\S+)", script):
        assert (REPO / config).is_file(), config
