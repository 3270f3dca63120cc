"""One end-to-end run on the real bundled corpus: the quickstart path, scaled down to about a minute."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import run_tangrnn


@pytest.mark.slow
def test_fit_on_the_bundled_corpus_learns_the_shape_of_verse(tmp_path):
    config = {
        "model": {
            "architecture": "lstm",
            "architecture_options": {"embedding_size": 64, "hidden_size": 128, "num_layers": 1, "dropout": 0.0},
            "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": 0.01}},
            "lr_scheduler": {"class_path": "tangrnn_core.module.WarmupCosine", "init_args": {"warmup_steps": 20}},
        },
        "data": {"forms": ["五绝", "七绝", "五律", "七律"], "batch_size": 64},
        "trainer": {
            "max_steps": 240,
            "val_check_interval": 240,
            "limit_val_batches": 8,
            "enable_progress_bar": False,
            "default_root_dir": str(tmp_path / "runs"),
        },
    }
    path = tmp_path / "real.yaml"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    result = run_tangrnn("fit", "--config", str(path), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Poems after 240 steps:" in result.stdout

    checkpoint = next((tmp_path / "runs").rglob("last.ckpt"))
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["global_step"] == 240
    # The uniform guess over the ~5,600 characters of the regular forms has perplexity ~5,600.
    perplexity = [v for k, v in saved["callbacks"].items() if "ModelCheckpoint" in k][0]["best_model_score"]
    assert float(perplexity) < 600

    # The samples already have the punctuation of verse: most lines end after 4 to 8 characters.
    poems = result.stdout.split("Poems after 240 steps:")[1].strip().splitlines()[:4]
    lines = [line for poem in poems for line in re.split("[，。？！；：]", poem.strip()) if line]
    assert lines
    assert sum(4 <= len(line) <= 8 for line in lines) / len(lines) > 0.5, poems
