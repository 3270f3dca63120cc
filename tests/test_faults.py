"""Faults: a save that dies midway, a training process killed with SIGKILL, a loss that turns NaN.

* Checkpoints are written atomically (:mod:`tangrnn_core.checkpointing`): a failed save leaves the previous file
  byte-identical and no temporary file behind.
* A `tangrnn fit` killed mid-epoch and resumed with ``--ckpt_path last`` ends at the same step as an
  uninterrupted run, with a final validation perplexity within 1% of it (see the test's docstring for why it is
  not bit-identical).
* ``model.nan_policy``: ``stop`` ends with one line naming the step; ``skip`` drops the batch and counts it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, run_batch, run_tangrnn, tiny_config

from tangrnn_core.errors import CheckpointError

# -- atomic checkpoints --------------------------------------------------------------------------------------


def _temp_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def test_atomic_save_writes_a_loadable_file_and_leaves_no_temp_file(tmp_path):
    from tangrnn_core.checkpointing import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    target = tmp_path / "sub" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 3}, target)
    loaded = io.load_checkpoint(target, weights_only=True)
    assert loaded["global_step"] == 3 and torch.equal(loaded["state_dict"]["w"], torch.ones(3))
    assert _temp_files(target.parent) == []
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # like a plain open(), not mkstemp's 0600


def test_a_save_that_fails_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from tangrnn_core.checkpointing import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.zeros(100)}, "global_step": 1}, target)
    before = target.read_bytes()

    def dies_midway(obj, file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a checkpoint")
        file.flush()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(CheckpointError, match="no space left on the disk of .*the previous last.ckpt, if any, is kept"):
        io.save_checkpoint({"state_dict": {"w": torch.ones(100)}, "global_step": 2}, target)
    assert target.read_bytes() == before
    assert _temp_files(tmp_path) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.ckpt"]
    # A kill is no exception: nothing is cleaned up, but the target is still the previous one (tested below).


@pytest.mark.parametrize(("free", "named"), [(1000, True), (10 * 2**30, False)], ids=["disk full", "room left"])
def test_torchs_write_error_is_put_down_to_a_full_disk_only_when_it_is(tmp_path, monkeypatch, free, named):
    import shutil

    from tangrnn_core import checkpointing

    def fails(obj, file, *args, **kwargs):  # what torch's zip writer raises when a write comes up short
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 35200 vs 35094")

    monkeypatch.setattr(torch, "save", fails)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(checkpointing.shutil, "disk_usage", lambda path: usage._replace(free=free))
    expected = CheckpointError if named else RuntimeError
    with pytest.raises(expected):
        checkpointing.atomic_save({"w": torch.ones(3)}, tmp_path / "last.ckpt")
    assert _temp_files(tmp_path) == []


def _small_disk(path: Path) -> bool:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(path)], capture_output=True)
    return mounted.returncode == 0


def test_fit_on_a_full_disk_stops_at_the_first_checkpoint_that_does_not_fit(tmp_path, small_corpus):
    disk = tmp_path / "disk"
    if not _small_disk(disk):
        pytest.skip("cannot mount a small tmpfs here (needs root); the unit tests above cover the diagnosis")
    try:
        config = tiny_config(tmp_path, small_corpus, max_steps=30, val_check_interval=5, default_root_dir=str(disk))
        wide = '{"embedding_size": 64, "hidden_size": 128, "num_layers": 1}'  # 2.7 MB a checkpoint: one fits
        result = run_tangrnn("fit", "--config", str(config), "--model.architecture_options", wide, timeout=600)
        assert_one_line_error(result, "cannot write checkpoint", "no space left", "trainer.default_root_dir")
        assert "step=5" in " ".join(path.name for path in disk.rglob("*.ckpt"))  # the one that fitted is kept
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_the_command_installs_atomic_checkpoints_unless_the_user_chose_a_checkpoint_io():
    from lightning.fabric.plugins import TorchCheckpointIO
    from lightning.pytorch.plugins.precision import Precision

    from tangrnn_core.checkpointing import AtomicCheckpointIO
    from tangrnn_core.lightning_cli import with_atomic_checkpoints

    plugins = with_atomic_checkpoints(None)
    assert len(plugins) == 1 and isinstance(plugins[0], AtomicCheckpointIO)
    precision = Precision()
    plugins = with_atomic_checkpoints(precision)
    assert plugins[0] is precision and isinstance(plugins[1], AtomicCheckpointIO)
    own = TorchCheckpointIO()
    assert with_atomic_checkpoints([own]) == [own]  # the user's choice is kept; Lightning allows one


# -- SIGKILL mid-epoch, then resume -------------------------------------------------------------------------

SLOW_CALLBACK = '''
import time
from pathlib import Path

import lightning.pytorch as pl


class SlowSteps(pl.Callback):
    """Writes the step reached to a file and sleeps after every batch, so a test can kill training in between."""

    def __init__(self, progress: str, seconds: float = 0.1) -> None:
        self.progress = Path(progress)
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.progress.write_text(str(trainer.global_step))
        time.sleep(self.seconds)
'''

MAX_STEPS = 16
EVERY = 4


def _fit_config(tmp: Path, corpus: Path, name: str) -> Path:
    folder = tmp / name
    folder.mkdir()
    callback = {"class_path": "slow_steps.SlowSteps", "init_args": {"progress": str(folder / "progress")}}
    path = tiny_config(
        folder,
        corpus,
        max_steps=MAX_STEPS,
        val_check_interval=EVERY,
        deterministic=True,
        callbacks=[callback],
    )
    # A high learning rate without warm-up, so that 16 steps move the perplexity a long way (the default
    # 200-step warm-up would leave it near the vocabulary size, where any two runs agree within 1%).
    config = json.loads(path.read_text(encoding="utf-8"))
    config["model"]["optimizer"] = {"class_path": "torch.optim.AdamW", "init_args": {"lr": 0.02}}
    scheduler = {"class_path": "tangrnn_core.module.WarmupCosine", "init_args": {"warmup_steps": 1}}
    config["model"]["lr_scheduler"] = scheduler
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return path


def _fit(config: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tangrnn_core", "fit", "--config", str(config), "--seed_everything", "7", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def _final(root: Path) -> dict:
    found = sorted(root.glob("runs/lightning_logs/version_*/checkpoints/last.ckpt"))
    assert found, list(root.rglob("*"))
    checkpoint = torch.load(found[-1], map_location="cpu", weights_only=True)
    state = next(value for key, value in checkpoint["callbacks"].items() if key.startswith("ModelCheckpoint"))
    return {
        "step": checkpoint["global_step"],
        "ppl": float(state["current_score"]),
        "weights": checkpoint["state_dict"],
        "path": found[-1],
    }


def test_fit_killed_mid_epoch_resumes_from_last_to_the_same_result(tmp_path, small_corpus):
    """SIGKILL at a random step between two checkpoints in the middle of the first epoch, resume with
    ``--ckpt_path last``: the final weights are identical to an uninterrupted run's (fp32, CPU, deterministic).

    The checkpoint current at the kill is intact (atomic saves); it holds the training loader's position in
    the epoch (a StatefulDataLoader's state, which Lightning saves and restores) and the random generators'
    states (dropout), so the resumed run trains on exactly the batches the uninterrupted one did, with the same
    draws.
    """
    (tmp_path / "slow_steps.py").write_text(SLOW_CALLBACK, encoding="utf-8")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}

    straight = _fit(_fit_config(tmp_path, small_corpus, "straight"), env)
    killed_config = _fit_config(tmp_path, small_corpus, "killed")
    killed = _fit(killed_config, env)
    runs = tmp_path / "killed" / "runs"
    progress = tmp_path / "killed" / "progress"
    deadline = time.monotonic() + 120
    saved_step = None
    try:
        while time.monotonic() < deadline and killed.poll() is None:
            lasts = list(runs.glob("lightning_logs/version_*/checkpoints/last.ckpt"))
            if lasts and saved_step is None:
                saved_step = torch.load(lasts[0], map_location="cpu", weights_only=True)["global_step"]
                kill_at = saved_step + random.randint(1, EVERY - 1)  # any step before the next checkpoint
            if saved_step is not None and progress.exists():
                text = progress.read_text()
                if text and int(text) >= kill_at:
                    killed.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.02)
        _, stderr = killed.communicate(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
    assert killed.returncode == -signal.SIGKILL, f"not killed in time (rc {killed.returncode}): {stderr[-2000:]}"
    killed_at = int(progress.read_text())
    assert saved_step is not None and saved_step < killed_at < MAX_STEPS
    last = next(runs.glob("lightning_logs/version_*/checkpoints/last.ckpt"))
    at_kill = torch.load(last, map_location="cpu", weights_only=True)  # intact, whatever the kill interrupted
    assert at_kill["global_step"] % EVERY == 0 and at_kill["global_step"] < killed_at

    resumed = _fit(killed_config, env, "--ckpt_path", "last")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out + err
    assert f"Restoring states from the checkpoint path at {last}" in err, err
    straight_out, straight_err = straight.communicate(timeout=120)
    assert straight.returncode == 0, straight_out + straight_err

    expected, got = _final(tmp_path / "straight"), _final(tmp_path / "killed")
    assert got["path"] != last  # the resumed run wrote its own version folder
    assert got["step"] == expected["step"] == MAX_STEPS
    # Exact: the resumed run took the batches the uninterrupted one took, with the same dropout draws.
    assert got["weights"].keys() == expected["weights"].keys()
    differing = [k for k in expected["weights"] if not torch.equal(got["weights"][k], expected["weights"][k])]
    assert differing == [], f"killed at step {killed_at}, resumed from {at_kill['global_step']}: {differing}"
    assert got["ppl"] == expected["ppl"]


# -- a loss that turns NaN ----------------------------------------------------------------------------------

NAN_ARCHITECTURE = '''
import torch
from tangrnn_recurrent import LSTM


class NaNOnSecondStep(LSTM):
    """An LSTM whose second training forward pass returns NaN logits (validation passes are left alone)."""

    def __init__(self, tokens, **options):
        super().__init__(tokens, **options)
        self.training_calls = 0

    def forward(self, batch):
        logits = super().forward(batch)
        if self.training:
            self.training_calls += 1
            if self.training_calls == 2:
                return logits * float("nan")
        return logits
'''


@pytest.fixture(scope="module")
def nan_runs(tmp_path_factory, small_corpus):
    tmp = tmp_path_factory.mktemp("nan")
    (tmp / "nan_architecture.py").write_text(NAN_ARCHITECTURE, encoding="utf-8")
    config = tiny_config(tmp, small_corpus, max_steps=4, val_check_interval=4, log_every_n_steps=1)
    fit = ["fit", "--config", str(config), "--model.architecture", "nan_architecture.NaNOnSecondStep"]
    fit += ["--model.architecture_options", '{"embedding_size": 16, "hidden_size": 16, "num_layers": 1}']
    cases = {
        "stop": {"argv": [*fit, "--trainer.default_root_dir", str(tmp / "stop")]},
        "skip": {"argv": [*fit, "--trainer.default_root_dir", str(tmp / "skip"), "--model.nan_policy", "skip"]},
        "bad_policy": {"argv": [*fit, "--model.nan_policy", "ignore"]},
    }
    pythonpath = os.pathsep.join(filter(None, [str(tmp), os.environ.get("PYTHONPATH")]))
    return tmp, run_batch(cases, tmp, env={"PYTHONPATH": pythonpath})


def test_nan_policy_stop_ends_with_one_line_naming_the_step(nan_runs):
    _, results = nan_runs
    result = results["stop"]
    assert_one_line_error(result, "training loss became nan at step 1", "nan_policy")
    assert result.returncode == 2


def test_nan_policy_skip_drops_the_batch_counts_it_and_trains_on(nan_runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tmp, results = nan_runs
    result = results["skip"]
    assert result.returncode == 0, result.stdout + result.stderr
    last = next((tmp / "skip").glob("lightning_logs/version_*/checkpoints/last.ckpt"))
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 4  # a skipped batch still counts as a step (the optimiser is called)
    assert checkpoint["tangrnn"]["skipped_batches"] == 1
    assert all(torch.isfinite(tensor).all() for tensor in checkpoint["state_dict"].values())
    events = EventAccumulator(str(last.parents[1]))
    events.Reload()
    skipped = [event.value for event in events.Scalars("train/skipped")]
    assert skipped and max(skipped) == 1.0, skipped


def test_nan_policy_rejects_unknown_values(nan_runs):
    _, results = nan_runs
    assert_one_line_error(results["bad_policy"], "model.nan_policy", "ignore")
    assert results["bad_policy"].returncode == 2


# -- a plugin whose forward() returns the wrong shape ---------------------------------------------------------

TIME_MAJOR = '''
from tangrnn_recurrent import LSTM


class TimeMajor(LSTM):
    """An LSTM whose forward() returns (time, batch, vocab): decoding and evaluation would misread it."""

    def forward(self, batch):
        return super().forward(batch).transpose(0, 1).contiguous()
'''


def test_a_forward_of_the_wrong_shape_stops_fit_at_the_first_step(tmp_path, small_corpus):
    (tmp_path / "time_major.py").write_text(TIME_MAJOR, encoding="utf-8")
    config = tiny_config(tmp_path, small_corpus, max_steps=2, val_check_interval=2)
    fit = ["fit", "--config", str(config), "--model.architecture", "time_major.TimeMajor"]
    cases = {
        "chunked": {"argv": fit},  # the default loss never calls forward()
        "full logits": {"argv": [*fit, "--model.loss_chunk_size", "0"]},
    }
    pythonpath = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    results = run_batch(cases, tmp_path, env={"PYTHONPATH": pythonpath})
    for result in results.values():
        assert_one_line_error(
            result, "forward(batch) returned shape", "(batch, time, vocab_size)", "check_architecture"
        )
    assert not list((tmp_path / "runs").rglob("*.ckpt"))
