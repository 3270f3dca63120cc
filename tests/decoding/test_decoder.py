"""The batched decoder over a tiny untrained LSTM, and the PoemSamples callback."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from tangrnn_core.callbacks import PoemSamples
from tangrnn_core.data.datamodule import PoetryDataModule
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding import decoder as decoder_module
from tangrnn_core.decoding import generate
from tangrnn_core.errors import ConfigError
from tangrnn_core.module import PoetryModel
from tangrnn_recurrent import LSTM

POEMS = [
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
    "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。",
    "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",
    "千山鸟飞绝，万径人踪灭。孤舟蓑笠翁，独钓寒江雪。",
]


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.build(POEMS)


def tiny_lstm(vocabulary: Vocabulary, favour_specials: bool = False) -> LSTM:
    torch.manual_seed(0)
    net = LSTM(vocabulary.token_spec(LINE_END_MARKS), embedding_size=8, hidden_size=8, num_layers=1, dropout=0.2)
    with torch.no_grad():
        net.output.bias.zero_()
        if favour_specials:
            # Without the decoder's ban, <pad>, <unk>, <bos> and <mask> would be drawn nearly every time.
            net.output.bias[[vocabulary.pad_id, vocabulary.unk_id, vocabulary.bos_id, vocabulary.mask_id]] = 30.0
            net.output.bias[vocabulary.eos_id] = -30.0  # so that every poem runs to max_length
        else:
            net.output.bias[vocabulary.eos_id] = -3.0  # poems of a few characters at least
    return net


def test_generate_returns_num_poems_strings(vocabulary):
    poems = generate(tiny_lstm(vocabulary), vocabulary, 5, max_length=30, generator=torch.Generator().manual_seed(0))
    assert len(poems) == 5
    assert all(isinstance(poem, str) for poem in poems)
    assert any(poems)
    assert set("".join(poems)) <= set(vocabulary.tokens[4:])


def test_special_tokens_are_never_sampled(monkeypatch, vocabulary):
    sampled = []
    real_sample = decoder_module.sample_next

    def recording(*args, **kwargs):
        ids = real_sample(*args, **kwargs)
        sampled.append(ids.clone())
        return ids

    monkeypatch.setattr(decoder_module, "sample_next", recording)
    net = tiny_lstm(vocabulary, favour_specials=True)
    poems = generate(net, vocabulary, 6, max_length=25, generator=torch.Generator().manual_seed(1))
    ids = torch.cat(sampled)
    assert len(sampled) == 25
    forbidden = torch.tensor([vocabulary.pad_id, vocabulary.unk_id, vocabulary.bos_id, vocabulary.mask_id])
    assert not torch.isin(ids, forbidden).any()
    assert all(len(poem) == 25 for poem in poems)


class RecordingSteps:
    """Wraps a network and records the batch size of every ``step`` call."""

    def __init__(self, net) -> None:
        self.net, self.sizes = net, []
        real = net.step

        def step(tokens, state):
            self.sizes.append(tokens.shape[0])
            return real(tokens, state)

        net.step = step


@pytest.mark.parametrize("constrained", [False, True])
def test_dropping_finished_poems_changes_no_poem(monkeypatch, vocabulary, constrained):
    from tangrnn_core.decoding.constraints import NoRepeat

    def write(share):
        monkeypatch.setattr(decoder_module.Sampling, "drop_finished_share", share)
        net = tiny_lstm(vocabulary)
        with torch.no_grad():
            net.output.bias[vocabulary.eos_id] = 1.0  # poems of very different lengths
        recording = RecordingSteps(net)
        processors = [NoRepeat(vocabulary)] if constrained else []
        poems = generate(
            net, vocabulary, 32, max_length=60, temperature=1.5, processors=processors,
            generator=torch.Generator().manual_seed(3),
        )  # fmt: skip
        return poems, recording.sizes

    kept, kept_sizes = write(2.0)  # never drops a row
    dropped, dropped_sizes = write(0.25)
    assert set(kept_sizes) == {32}
    assert dropped_sizes[-1] < 32 and len(set(dropped_sizes)) > 2  # the batch shrank, several times
    assert len({len(poem) for poem in kept}) > 5
    assert dropped == kept


def test_same_seed_gives_the_same_poems(vocabulary):
    net = tiny_lstm(vocabulary)
    first = generate(net, vocabulary, 4, max_length=40, generator=torch.Generator().manual_seed(7))
    second = generate(net, vocabulary, 4, max_length=40, generator=torch.Generator().manual_seed(7))
    other = generate(net, vocabulary, 4, max_length=40, generator=torch.Generator().manual_seed(8))
    assert first == second
    assert first != other


def test_temperature_zero_is_greedy_and_deterministic(vocabulary):
    net = tiny_lstm(vocabulary)
    first = generate(net, vocabulary, 3, max_length=20, temperature=0)
    second = generate(net, vocabulary, 3, max_length=20, temperature=0, generator=torch.Generator().manual_seed(5))
    assert first == second
    assert len(set(first)) == 1  # every poem starts from the same state and takes the best character


@pytest.mark.parametrize("max_length", [1, 7])
def test_max_length_is_respected(vocabulary, max_length):
    net = tiny_lstm(vocabulary)
    poems = generate(net, vocabulary, 8, max_length=max_length, generator=torch.Generator().manual_seed(3))
    assert all(len(poem) <= max_length for poem in poems)
    assert any(len(poem) == max_length for poem in poems)


def test_a_processor_can_force_one_character(vocabulary):
    moon = vocabulary.id_of("月")
    seen_steps = []

    def only_moon(state, logits):
        seen_steps.append(state.step)
        assert state.vocabulary is vocabulary
        forced = torch.full_like(logits, float("-inf"))
        forced[:, moon] = logits[:, moon]
        return forced

    net = tiny_lstm(vocabulary)
    poems = generate(
        net, vocabulary, 3, max_length=6, processors=[only_moon], generator=torch.Generator().manual_seed(0)
    )
    assert poems == ["月" * 6] * 3
    assert seen_steps == list(range(6))


def test_finished_poems_stop_and_pad(vocabulary):
    # Forcing <eos> at the third step of the first poem: it ends there while the others go on.
    def end_first(state, logits):
        if state.step == 2:
            logits[0] = float("-inf")
            logits[0, vocabulary.eos_id] = 0.0
        else:
            logits[:, vocabulary.eos_id] = float("-inf")
        return logits

    net = tiny_lstm(vocabulary)
    poems = generate(
        net, vocabulary, 2, max_length=5, processors=[end_first], generator=torch.Generator().manual_seed(0)
    )
    assert len(poems[0]) == 2 and len(poems[1]) == 5


@pytest.mark.parametrize("training", [True, False])
def test_training_mode_is_restored(vocabulary, training):
    net = tiny_lstm(vocabulary).train(training)
    generate(net, vocabulary, 2, max_length=5, generator=torch.Generator().manual_seed(0))
    assert net.training is training
    assert all(module.training is training for module in net.modules())


def test_dropout_is_off_while_generating(vocabulary):
    net = tiny_lstm(vocabulary).train()
    poems = [generate(net, vocabulary, 2, max_length=30, temperature=0) for _ in range(3)]
    assert poems[0] == poems[1] == poems[2]


@pytest.mark.parametrize("options", [{"temperature": -0.5}, {"top_p": 0.0}, {"top_p": 1.5}])
def test_invalid_sampling_options(vocabulary, options):
    with pytest.raises(ConfigError):
        generate(tiny_lstm(vocabulary), vocabulary, 2, **options)


def test_poem_samples_print_after_validation_but_not_in_the_sanity_check(tmp_path, small_corpus, capsys):
    datamodule = PoetryDataModule(
        corpus=str(small_corpus), max_poems=200, batch_size=8, val_fraction=0.1, test_fraction=0.1
    )
    torch.manual_seed(0)
    model = PoetryModel(
        vocab_size=datamodule.vocab_size,
        line_end_ids=datamodule.line_end_ids,
        architecture="lstm",
        architecture_options={"embedding_size": 8, "hidden_size": 8, "num_layers": 1},
    )
    trainer = pl.Trainer(
        max_steps=2,
        val_check_interval=2,
        limit_val_batches=1,
        num_sanity_val_steps=1,
        callbacks=[PoemSamples(num_poems=3, max_length=12)],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        default_root_dir=tmp_path,
    )
    capsys.readouterr()
    trainer.fit(model, datamodule=datamodule)
    out = capsys.readouterr().out
    assert out.count("Poems after") == 1, out
    assert "Poems after 0 steps" not in out
    block = out[out.index("Poems after 2 steps:") :].splitlines()
    poems = [line for line in block[1:4]]
    assert len(poems) == 3 and all(line.startswith("  ") for line in poems), out
    assert all(len(line.strip()) <= 12 for line in poems)
