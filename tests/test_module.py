"""PoetryModel: building architectures, option checking, the loss, checkpoints, the schedule and perplexity."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_one_line_error, run_batch, tiny_config
from torchmetrics.text import Perplexity

from tangrnn_core.api import Batch, TokenSpec
from tangrnn_core.data.datamodule import PoetryDataModule
from tangrnn_core.errors import CheckpointError, ConfigError
from tangrnn_core.metrics import TokenPerplexity
from tangrnn_core.module import PoetryModel, WarmupCosine
from tangrnn_core.network import build_architecture
from tangrnn_recurrent import GRU, LSTM, RNN

TINY = {"embedding_size": 8, "hidden_size": 8, "num_layers": 1}


def tiny_model(architecture: str = "lstm", vocab_size: int = 30, **options) -> PoetryModel:
    torch.manual_seed(0)
    return PoetryModel(
        vocab_size=vocab_size,
        line_end_ids=[4, 5],
        architecture=architecture,
        architecture_options={**TINY, **options},
    )


# -- building ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, cls", [("rnn", RNN), ("lstm", LSTM), ("gru", GRU)])
def test_builds_from_a_plugin_name(name, cls):
    model = tiny_model(name)
    assert type(model.net) is cls
    assert model.net.tokens == TokenSpec(vocab_size=30, line_end_ids=(4, 5))
    assert model.net.rnn.hidden_size == 8
    assert model.hparams.architecture == name


@pytest.mark.parametrize("path, cls", [("tangrnn_recurrent.GRU", GRU), ("tangrnn_recurrent:RNN", RNN)])
def test_builds_from_a_class_path(path, cls):
    model = tiny_model(path, hidden_size=12)
    assert type(model.net) is cls
    assert model.net.rnn.hidden_size == 12


def test_unknown_option_names_the_key_and_lists_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        tiny_model("lstm", hiden_size=16)
    message = str(info.value)
    assert "'hiden_size'" in message
    for option in ("embedding_size", "hidden_size", "num_layers", "dropout", "tie_weights"):
        assert option in message
    assert "tokens" not in message


@pytest.mark.parametrize("options", [{"hidden_size": "big"}, {"num_layers": 1.5}, {"tie_weights": "maybe"}])
def test_wrong_option_type_is_a_config_error(options):
    with pytest.raises(ConfigError, match=next(iter(options))):
        tiny_model("gru", **options)


def test_option_values_the_architecture_rejects_are_config_errors():
    with pytest.raises(ConfigError, match="dropout"):
        tiny_model("rnn", dropout=1.5)


def test_build_architecture_converts_option_types():
    net = build_architecture("lstm", {"hidden_size": "12", "embedding_size": 8}, TokenSpec(vocab_size=20))
    assert net.rnn.hidden_size == 12


@pytest.mark.parametrize("vocab_size", [0, 4])
def test_too_small_vocab_size_is_a_config_error(vocab_size):
    with pytest.raises(ConfigError, match="vocab_size"):
        PoetryModel(vocab_size=vocab_size, architecture="lstm", architecture_options=TINY)


# -- the loss ----------------------------------------------------------------------------------------------


def _batch(rows: list[list[int]], width: int | None = None, eos: int = 3) -> Batch:
    """Rows of characters -> a Batch with <bos> inputs and <eos> targets, padded with 0 to ``width``."""
    width = width or max(len(row) for row in rows) + 1
    inputs = torch.zeros(len(rows), width, dtype=torch.long)
    targets = torch.zeros(len(rows), width, dtype=torch.long)
    for index, row in enumerate(rows):
        inputs[index, 0] = 2
        inputs[index, 1 : len(row) + 1] = torch.tensor(row)
        targets[index, : len(row)] = torch.tensor(row)
        targets[index, len(row)] = eos
    return Batch(inputs, targets, torch.tensor([len(row) + 1 for row in rows]))


def test_loss_ignores_padding():
    model = tiny_model("lstm").eval()
    rows = [[5, 9, 11, 7, 4, 8], [12, 6, 4]]
    with torch.no_grad():
        tight, count = model._summed_loss(_batch(rows))
        loose, loose_count = model._summed_loss(_batch(rows, width=15))
        alone = sum(model._summed_loss(_batch([row]))[0] for row in rows)
    assert count == loose_count == 7 + 4
    torch.testing.assert_close(loose, tight)
    # the shorter row's padding, inside the batch, adds nothing either
    torch.testing.assert_close(tight, alone)
    # and the loss does depend on the real targets
    changed = _batch(rows)
    changed.targets[1, 1] = 20
    with torch.no_grad():
        assert not torch.allclose(model._summed_loss(changed)[0], tight)


# -- training and checkpoints ------------------------------------------------------------------------------


def _fit(tmp_path: Path, corpus, max_steps: int = 3) -> tuple[pl.Trainer, PoetryModel, PoetryDataModule, Path]:
    datamodule = PoetryDataModule(
        corpus=corpus, max_poems=200, batch_size=8, val_fraction=0.1, test_fraction=0.1, min_count=1
    )
    model = PoetryModel(
        vocab_size=datamodule.vocab_size,
        line_end_ids=datamodule.line_end_ids,
        architecture="lstm",
        architecture_options=TINY,
    )
    trainer = pl.Trainer(
        max_steps=max_steps,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        val_check_interval=max_steps,
        limit_val_batches=2,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=datamodule)
    checkpoints = sorted(tmp_path.rglob("*.ckpt"))
    assert len(checkpoints) == 1, checkpoints
    return trainer, model, datamodule, checkpoints[0]


def test_fit_saves_a_safe_checkpoint_with_the_vocabulary(tmp_path, small_corpus):
    trainer, model, datamodule, path = _fit(tmp_path, str(small_corpus))
    assert trainer.global_step == 3
    assert model.vocabulary == datamodule.vocabulary
    # the schedule's length came from the trainer
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, WarmupCosine) and scheduler.total_steps == 3
    assert math.isfinite(float(trainer.callback_metrics["val/ppl"]))

    checkpoint = torch.load(path, weights_only=True)
    section = checkpoint["tangrnn"]
    assert section["vocabulary"] == list(datamodule.vocabulary.tokens)
    assert section["architecture"] == "lstm"
    assert section["format"] == 1 and section["plugin_api"] == 1

    restored = PoetryModel.load_from_checkpoint(path, weights_only=True)
    assert restored.vocabulary == datamodule.vocabulary
    assert type(restored.net) is LSTM
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[name], tensor)


def test_checkpoint_is_safe_when_the_corpus_is_a_path(tmp_path, small_corpus):
    _, _, _, path = _fit(tmp_path, small_corpus, max_steps=1)
    torch.load(path, weights_only=True)


@pytest.mark.parametrize("checkpoint", [{}, {"tangrnn": {"format": 1}}, {"tangrnn": ["<pad>"]}])
def test_on_load_checkpoint_without_a_tangrnn_section(checkpoint):
    with pytest.raises(CheckpointError):
        tiny_model().on_load_checkpoint(checkpoint)


def test_on_load_checkpoint_with_a_vocabulary_of_the_wrong_size():
    model = tiny_model(vocab_size=30)
    with pytest.raises(CheckpointError, match="30"):
        model.on_load_checkpoint({"tangrnn": {"vocabulary": ["<pad>", "<unk>", "<bos>", "<eos>", "<mask>", "月"]}})


# -- the learning-rate schedule ----------------------------------------------------------------------------


def _rates(scheduler_kwargs: dict, steps: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    scheduler = WarmupCosine(optimizer, **scheduler_kwargs)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"] / 2.0)
        optimizer.step()
        scheduler.step()
    return rates


def test_warmup_is_linear_then_cosine_decays_to_final_ratio():
    rates = _rates({"warmup_steps": 4, "total_steps": 12, "final_ratio": 0.1}, 16)
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[4] == pytest.approx(1.0)
    assert rates[8] == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the decay
    assert all(a > b for a, b in zip(rates[4:12], rates[5:13]))
    assert rates[12:] == pytest.approx([0.1] * 4)


def test_schedule_is_constant_after_warmup_without_total_steps():
    rates = _rates({"warmup_steps": 2, "total_steps": None}, 10)
    assert rates[:2] == pytest.approx([0.5, 1.0])
    assert rates[2:] == pytest.approx([1.0] * 8)


def test_schedule_without_warmup_starts_at_the_base_rate():
    rates = _rates({"warmup_steps": 0, "total_steps": 5, "final_ratio": 0.2}, 7)
    assert rates[0] == pytest.approx(1.0)
    assert rates[5:] == pytest.approx([0.2, 0.2])


# -- perplexity --------------------------------------------------------------------------------------------


def test_token_perplexity_matches_hand_computation_and_torchmetrics():
    generator = torch.Generator().manual_seed(0)
    vocab = 13
    logits = torch.randn(4, 9, vocab, generator=generator)
    targets = torch.randint(1, vocab, (4, 9), generator=generator)
    targets[0, 5:] = 0
    targets[2, 2:] = 0
    real = targets != 0

    by_hand = torch.exp(-torch.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1)[real].mean())

    metric = TokenPerplexity()
    # fed in two updates, as validation batches would be
    for rows in (slice(0, 2), slice(2, 4)):
        summed = F.cross_entropy(
            logits[rows].reshape(-1, vocab), targets[rows].reshape(-1), ignore_index=0, reduction="sum"
        )
        metric.update(summed, real[rows].sum())
    reference = Perplexity(ignore_index=0)
    reference.update(logits, targets)

    torch.testing.assert_close(metric.compute(), by_hand.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(metric.compute(), reference.compute(), rtol=1e-5, atol=1e-5)
    metric.reset()
    metric.update(torch.tensor(0.0), 0)
    assert metric.compute() == pytest.approx(1.0)


def test_resumed_schedule_keeps_the_configured_length_and_the_saved_progress():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    short = WarmupCosine(optimizer, warmup_steps=0, total_steps=10, final_ratio=0.1)
    for _ in range(10):
        optimizer.step()
        short.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2)  # the end of the short schedule
    saved = short.state_dict()

    resumed_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    longer = WarmupCosine(resumed_optimizer, warmup_steps=0, total_steps=20, final_ratio=0.1)
    longer.load_state_dict(saved)
    assert longer.last_epoch == 10 and longer.total_steps == 20
    # Half way through the longer cosine, not stuck at the short one's final rate.
    assert resumed_optimizer.param_groups[0]["lr"] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))


def test_a_schedule_by_time_follows_the_clock_after_a_warmup_by_steps():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    scheduler = WarmupCosine(optimizer, warmup_steps=4, final_ratio=0.1, schedule_by="time")
    spent = [0.0]
    scheduler.follow_time(lambda: spent[0])
    rates = []
    for share in (0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.5):
        spent[0] = share
        rates.append(optimizer.param_groups[0]["lr"] / 2.0)
        optimizer.step()
        scheduler.step()
    # Steps 1-3 warm up; the rate at step 5 is the cosine's at half the time, then its end, and it stays there.
    assert rates[1:4] == pytest.approx([0.5, 0.75, 1.0])
    assert optimizer.param_groups[0]["lr"] / 2.0 == pytest.approx(0.1)
    assert rates[5] == pytest.approx(0.1 + 0.9 * 0.5)
    assert "_progress_of_time" not in scheduler.state_dict()  # plain data only
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)
    buffer.seek(0)
    torch.load(buffer, weights_only=True)


def test_schedule_by_must_be_steps_or_time():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="steps or time"):
        WarmupCosine(optimizer, schedule_by="epochs")


def test_fit_with_a_schedule_by_time_ends_at_the_final_rate_when_max_time_stops_it(tmp_path, small_corpus):
    config = json.loads(tiny_config(tmp_path, small_corpus).read_text(encoding="utf-8"))
    config["model"]["lr_scheduler"] = {
        "class_path": "tangrnn_core.module.WarmupCosine",
        "init_args": {"warmup_steps": 2, "final_ratio": 0.1, "schedule_by": "time"},
    }
    config["trainer"].update(max_steps=1_000_000, max_time="00:00:00:04")
    timed = tmp_path / "timed.yaml"
    timed.write_text(json.dumps(config), encoding="utf-8")
    cases = {
        "timed": {"argv": ["fit", "--config", str(timed)]},
        "no_budget": {"argv": ["fit", "--config", str(timed), "--trainer.max_time", "null"]},
    }
    results = run_batch(cases, tmp_path)
    assert results["timed"].returncode == 0, results["timed"].stderr[-2000:]
    last = next(tmp_path.glob("runs/lightning_logs/version_*/checkpoints/last.ckpt"))
    schedule = torch.load(last, weights_only=True)["lr_schedulers"][0]
    assert schedule["schedule_by"] == "time" and schedule["last_epoch"] > 2
    # The time ran out at the last step, so the cosine had reached (nearly) its end, whatever the speed.
    assert schedule["_last_lr"][0] / schedule["base_lrs"][0] < 0.15
    assert_one_line_error(results["no_budget"], "schedule_by: time", "trainer.max_time")
