"""`tangrnn models pack`: a training checkpoint becomes slim weights and a card that write the same poems."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
import torch
from conftest import assert_one_line_error, run_batch

from tangrnn_core.data.datamodule import PoetryDataModule
from tangrnn_core.models.pack import pack_model, read_evaluation
from tangrnn_core.module import PoetryModel


def train_and_save(data, run, steps, config_yaml, **model_options):
    """A tiny tied LSTM trained ``steps`` steps on ``data``, saved as `tangrnn fit` saves it (with its data
    options) in ``run/checkpoints/``, with ``config_yaml`` as the run's config.yaml; returns the checkpoint."""
    model = PoetryModel(
        vocab_size=data.vocab_size,
        line_end_ids=data.line_end_ids,
        architecture="lstm",
        architecture_options={"embedding_size": 16, "hidden_size": 16, "num_layers": 1, "weight_dropout": 0.2},
        **model_options,
    )
    trainer = pl.Trainer(
        max_steps=steps, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model, datamodule=data)
    path = run / "checkpoints" / "model.ckpt"
    trainer.save_checkpoint(path)
    (run / "config.yaml").write_text(config_yaml, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, small_corpus):
    """A small tied LSTM trained for a few steps, saved as `tangrnn fit` saves it (with its data options)."""
    data = PoetryDataModule(
        corpus=str(small_corpus), batch_size=16, val_fraction=0.1, test_fraction=0.1, eval_forms=["五绝", "七绝"]
    )
    return train_and_save(data, tmp_path_factory.mktemp("pack") / "run", 10, "model:\n  architecture: lstm\n")


def test_pack_keeps_what_decoding_needs_and_drops_the_rest(checkpoint, tmp_path):
    weights, card = pack_model(checkpoint, "tiny", tmp_path, weights="bf16", trained_on="a test, seconds")
    packed = torch.load(weights, weights_only=True)
    original = torch.load(checkpoint, weights_only=True)
    assert "optimizer_states" not in packed and "loops" not in packed
    assert packed["state_dict"].keys() == original["state_dict"].keys()
    assert all(t.dtype == torch.bfloat16 for t in packed["state_dict"].values() if t.is_floating_point())
    # tied weights stay one tensor
    state = packed["state_dict"]
    assert state["net.embedding.weight"].data_ptr() == state["net.output.weight"].data_ptr()
    assert weights.stat().st_size < checkpoint.stat().st_size / 3
    facts = packed["tangrnn"]["card"]
    assert (
        facts["data"]["eval_forms"] == ["五绝", "七绝"]
        and facts["data"]["corpus"] == original["datamodule_hyper_parameters"]["corpus"]
    )
    assert facts["global_step"] == 10 and facts["vocabulary_size"] == len(original["tangrnn"]["vocabulary"])
    assert facts["config"] == {"model": {"architecture": "lstm"}}  # the run's config.yaml, found beside it
    text = card.read_text(encoding="utf-8")
    assert "# tiny" in text and "weight_dropout 0.2" in text and "a test, seconds" in text and "MIT" in text
    assert facts["corpus_sha256"] in text


def test_pack_refuses_to_replace_files_without_force(checkpoint, tmp_path):
    pack_model(checkpoint, "tiny", tmp_path)
    before = (tmp_path / "tiny.pt").read_bytes()
    results = run_batch(
        {
            "again": {
                "argv": [
                    "models",
                    "pack",
                    "--ckpt_path",
                    str(checkpoint),
                    "--name",
                    "tiny",
                    "--output_dir",
                    str(tmp_path),
                ]
            },
            "bad_name": {
                "argv": [
                    "models",
                    "pack",
                    "--ckpt_path",
                    str(checkpoint),
                    "--name",
                    "../x",
                    "--output_dir",
                    str(tmp_path),
                ]
            },
            "not_a_ckpt": {
                "argv": [
                    "models",
                    "pack",
                    "--ckpt_path",
                    str(tmp_path / "tiny.md"),
                    "--output_dir",
                    str(tmp_path / "o"),
                ]
            },
            "bad_evaluation": {
                "argv": [
                    "models",
                    "pack",
                    "--ckpt_path",
                    str(checkpoint),
                    "--evaluation",
                    str(tmp_path / "tiny.md"),
                    "--output_dir",
                    str(tmp_path / "o"),
                ]
            },
            "unknown_card": {"argv": ["models", "card", "nope"]},
        },
        tmp_path,
    )
    assert_one_line_error(results["again"], "already exist", "--force")
    assert_one_line_error(results["bad_name"], "--name")
    assert_one_line_error(results["not_a_ckpt"], "tiny.md")
    assert_one_line_error(results["bad_evaluation"], "tangrnn evaluate", "--output json")
    assert_one_line_error(results["unknown_card"], "no bundled model named 'nope'", "tang-lstm")
    assert (tmp_path / "tiny.pt").read_bytes() == before
    assert not (tmp_path / "o").exists()


def test_a_packed_model_writes_the_poems_of_its_checkpoint(checkpoint, tmp_path):
    fp32, _ = pack_model(checkpoint, "fp32", tmp_path, weights="fp32")
    bf16, _ = pack_model(checkpoint, "bf16", tmp_path, weights="bf16")
    args = ["--form", "五绝", "--num_poems", "6", "--seed", "7", "--output", "json"]
    results = run_batch(
        {
            name: {"argv": ["generate", "--ckpt_path", str(path), *args]}
            for name, path in (("ckpt", checkpoint), ("fp32", fp32), ("bf16", bf16))
        },
        tmp_path,
    )
    poems = {name: [json.loads(line)["poem"] for line in r.stdout.splitlines()] for name, r in results.items()}
    assert all(r.returncode == 0 for r in results.values()), {n: r.stderr for n, r in results.items()}
    assert len(poems["ckpt"]) == 6 and poems["fp32"] == poems["ckpt"]
    assert len(poems["bf16"]) == 6 and all(
        json.loads(line)["form"] == "五绝" for line in results["bf16"].stdout.splitlines()
    )


def test_the_card_takes_the_evaluation_report(checkpoint, tmp_path):
    report = {
        "checkpoint": "x",
        "settings": {"num_poems": 2, "form": "free", "temperature": 0.8, "seed": 1, "check_tones": "strict"},
        "test": {"perplexity": 77.7, "cross_entropy": 4.35, "poems": 3, "characters": 90},
        "continuation": {"bleu2": 0.0123, "poems": 2},
        "samples": {},
    }
    path = tmp_path / "eval.json"
    path.write_text("some log line\n" + json.dumps(report), encoding="utf-8")
    weights, card = pack_model(checkpoint, "tiny", tmp_path, evaluation=read_evaluation(path))
    assert torch.load(weights, weights_only=True)["tangrnn"]["card"]["test_perplexity"] == 77.7
    assert "| test perplexity | 77.70" in card.read_text(encoding="utf-8")


def test_training_minutes_follow_the_timer_across_resumed_runs(tmp_path):
    from tangrnn_core.models.pack import _training_minutes

    resumed = {"callbacks": {"Timer": {"time_elapsed": {"train": 3 * 3600 + 90.0, "validate": 12.0}}}}
    assert _training_minutes(resumed, tmp_path / "run" / "checkpoints" / "best.ckpt") == 181.5
    # Without a timer, the run's TensorBoard log decides; without one either, nothing is claimed.
    assert _training_minutes({}, tmp_path / "run" / "checkpoints" / "best.ckpt") is None


def test_a_fine_tuned_model_s_card_tells_both_stages(checkpoint, tmp_path):
    """A checkpoint fine-tuned from another (``model.init_from``) packs into a card that names the model it
    started from with that one's steps, and is scored on the first stage's data with its own evaluation forms:
    its training split holds every poem the fine-tuning saw, so copied lines are looked for in all of it."""
    data = PoetryDataModule(
        corpus=torch.load(checkpoint, weights_only=True)["datamodule_hyper_parameters"]["corpus"],
        batch_size=16,
        val_fraction=0.1,
        test_fraction=0.1,
        forms=["五绝"],
        vocabulary_from=str(checkpoint),
    )
    tuned = train_and_save(data, tmp_path / "tuned", 3, "data:\n  forms: [五绝]\n", init_from=str(checkpoint))

    result = run_batch(
        {
            "pack": {
                "argv": ["models", "pack", "--ckpt_path", str(tuned), "--name", "tuned", "--output_dir", str(tmp_path)]
            }
        },
        tmp_path,
    )["pack"]
    assert result.returncode == 0, result.stderr
    card = torch.load(tmp_path / "tuned.pt", weights_only=True)["tangrnn"]["card"]
    start = card["fine_tuned_from"]
    assert card["global_step"] == 3 and start["global_step"] == 10 and start["name"] == str(checkpoint)
    assert start["config"] == {"model": {"architecture": "lstm"}} and "fine_tuned_from" not in start
    # the first stage's data (every form) with the fine-tuning's evaluation forms
    assert card["data"]["forms"] is None and card["data"]["eval_forms"] == ["五绝"]
    text = (tmp_path / "tuned.md").read_text(encoding="utf-8")
    assert f"| fine-tuned from | {checkpoint}: 10 steps" in text
    assert "## The training config of" in text and "forms:\n  - 五绝" in text


def test_packing_a_fine_tuned_model_needs_the_model_it_started_from(checkpoint, tmp_path):
    original = torch.load(checkpoint, weights_only=True)
    original["hyper_parameters"]["init_from"] = str(tmp_path / "gone.ckpt")
    orphan = tmp_path / "orphan.ckpt"
    torch.save(original, orphan)
    result = run_batch(
        {"pack": {"argv": ["models", "pack", "--ckpt_path", str(orphan), "--output_dir", str(tmp_path / "o")]}},
        tmp_path,
    )["pack"]
    assert_one_line_error(result, "model.init_from (the model the checkpoint was fine-tuned from)", "gone.ckpt")
    assert not (tmp_path / "o").exists()
