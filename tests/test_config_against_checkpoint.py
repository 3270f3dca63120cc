"""A config that disagrees with the checkpoint it is used with: refused for another architecture, named in one
line for other architecture options (the checkpoint's network is the one it holds), silent when they agree."""

from __future__ import annotations

import json

import pytest
from conftest import assert_one_line_error, run_batch, run_tangrnn, tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_corpus):
    tmp = tmp_path_factory.mktemp("mismatch")
    config = tiny_config(tmp, small_corpus, max_steps=2, val_check_interval=2)
    result = run_tangrnn("fit", "--config", str(config), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return config, str(next((tmp / "runs").rglob("last.ckpt"))), tmp


def test_the_config_and_the_checkpoint(trained):
    config, checkpoint, tmp = trained
    wider = json.dumps({"embedding_size": 16, "hidden_size": 32, "num_layers": 1})
    base = ["validate", "--config", str(config), "--ckpt_path", checkpoint]
    results = run_batch(
        {
            "agree": {"argv": base},
            "other architecture": {"argv": [*base, "--model.architecture", "gru"]},
            "other options": {"argv": [*base, "--model.architecture_options", wider]},
        },
        tmp,
    )
    agree = results["agree"]
    assert agree.returncode == 0, agree.stderr[-2000:]
    assert "note:" not in agree.stderr
    assert_one_line_error(
        results["other architecture"], "asks for architecture 'gru'", "holds a 'lstm' network", checkpoint
    )
    options = results["other options"]
    assert options.returncode == 0, options.stderr[-2000:]
    notes = [line for line in options.stderr.splitlines() if line.startswith("tangrnn: note:")]
    assert len(notes) == 1 and "hidden_size=32 (checkpoint: 16)" in notes[0] and checkpoint in notes[0]
    # the checkpoint's network was used: the same perplexity as with a config that agrees
    assert options.stdout.split("val/ppl")[1][:40] == agree.stdout.split("val/ppl")[1][:40]
