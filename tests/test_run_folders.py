"""Runs started together into one folder each claim their own version; `--ckpt_path last` takes its lineage."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
from conftest import run_tangrnn, tiny_config
from lightning.pytorch.loggers import TensorBoardLogger

from tangrnn_core.run_folders import claim_version, newest_last_checkpoint


def test_a_version_taken_between_listing_and_claiming_is_skipped(tmp_path, monkeypatch):
    logger = TensorBoardLogger(save_dir=str(tmp_path))
    (tmp_path / "lightning_logs" / "version_0").mkdir(parents=True)
    # Another run created version_0 after this one listed the folder: the listing still says 0.
    monkeypatch.setattr(logger, "_get_next_version", lambda: 0)
    assert claim_version(logger) == 1
    assert logger.version == 1 and (tmp_path / "lightning_logs" / "version_1").is_dir()
    assert claim_version(logger) is None  # pinned: claimed once


def test_a_logger_with_a_version_is_left_alone(tmp_path):
    assert claim_version(TensorBoardLogger(save_dir=str(tmp_path), version=7)) is None
    assert not (tmp_path / "lightning_logs").exists()


def test_three_runs_started_together_keep_their_own_folders(tmp_path, small_corpus):
    config = tiny_config(tmp_path, small_corpus, max_steps=2, val_check_interval=2)
    command = [sys.executable, "-m", "tangrnn_core", "fit", "--config", str(config)]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        for _ in range(3)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr[-2000:]
    versions = sorted((tmp_path / "runs" / "lightning_logs").iterdir())
    assert [folder.name for folder in versions] == ["version_0", "version_1", "version_2"]
    for folder in versions:
        assert (folder / "config.yaml").is_file() and (folder / "checkpoints" / "last.ckpt").is_file()


def test_last_resumes_the_lineage_of_this_network_and_says_which(tmp_path, small_corpus):
    lstm = tiny_config(tmp_path, small_corpus, max_steps=2, val_check_interval=2)
    gru = tmp_path / "gru.yaml"
    data = json.loads(lstm.read_text(encoding="utf-8"))
    data["model"]["architecture"] = "gru"
    gru.write_text(json.dumps(data), encoding="utf-8")
    for config in (lstm, gru):  # the GRU run is the newer
        result = run_tangrnn("fit", "--config", str(config), timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
    folders = sorted((tmp_path / "runs" / "lightning_logs").iterdir())
    lstm_last = folders[0] / "checkpoints" / "last.ckpt"
    assert torch.load(lstm_last, weights_only=True)["tangrnn"]["architecture"] == "lstm"

    resumed = run_tangrnn("validate", "--config", str(lstm), "--ckpt_path", "last", timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    said = [line for line in resumed.stderr.splitlines() if line.startswith("tangrnn: --ckpt_path last:")]
    assert said == [f"tangrnn: --ckpt_path last: {lstm_last} (the newest last checkpoint of a run of this network)"]


def test_without_a_run_of_this_network_the_newest_is_taken(tmp_path):
    older, newer = tmp_path / "a" / "version_0", tmp_path / "a" / "version_1"
    for index, folder in enumerate((older, newer)):
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "checkpoints" / "last.ckpt").write_bytes(b"x")
        os.utime(folder / "checkpoints" / "last.ckpt", (1000 + index, 1000 + index))
    path, why = newest_last_checkpoint(tmp_path, {"architecture": "lstm"})
    assert path == newer / "checkpoints" / "last.ckpt" and "no run of this network" in why
    assert newest_last_checkpoint(tmp_path / "empty", None) == (None, "")
