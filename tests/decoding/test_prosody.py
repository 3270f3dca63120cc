"""Regulated-verse processors: tone masks (strict, loose), rhyme masks, patterns chosen per poem, forced
characters, no-repeat, beam search, and generated poems that `tangrnn check` passes."""

from __future__ import annotations

import json
import subprocess
import sys

import opencc
import pytest
import torch

from tangrnn_core.data.forms import split_lines
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding import DecodeState, generate
from tangrnn_core.decoding.constraints import FormConstraint, NoRepeat, acrostic_constraint, first_line_constraint
from tangrnn_core.decoding.prosody import ProsodyConstraint, token_prosody
from tangrnn_core.errors import ConfigError
from tangrnn_core.prosody.checker import check_poem
from tangrnn_core.prosody.tables import load_tables
from tangrnn_recurrent import LSTM

SHAPES = {"五绝": (5, 4), "七绝": (7, 4), "五律": (5, 8), "七律": (7, 8)}


@pytest.fixture(scope="module")
def vocabulary(small_corpus) -> Vocabulary:
    """The characters of the first 600 poems of the corpus, simplified, as a model trained on them has."""
    t2s = opencc.OpenCC("t2s")
    lines = small_corpus.read_text("utf-8").splitlines()
    texts = [t2s.convert("".join(json.loads(line)["paragraphs"])) for line in lines]
    return Vocabulary.build(texts)


@pytest.fixture(scope="module")
def net(vocabulary) -> LSTM:
    torch.manual_seed(0)
    lstm = LSTM(vocabulary.token_spec(LINE_END_MARKS), embedding_size=8, hidden_size=8, num_layers=1, dropout=0.0)
    with torch.no_grad():
        lstm.output.bias.zero_()
    return lstm


def decode_state(vocabulary: Vocabulary, texts: list[str]) -> DecodeState:
    ids = torch.tensor([vocabulary.encode(text) for text in texts], dtype=torch.long).reshape(len(texts), -1)
    return DecodeState(ids, torch.zeros(len(texts), dtype=torch.bool), vocabulary)


def allowed(make, vocabulary: Vocabulary, texts: list[str]) -> list[set[str]]:
    """The characters a new processor from ``make()`` allows next after each of ``texts`` (fed as generated)."""
    sets = []
    for text in texts:
        logits = make()(decode_state(vocabulary, [text]), torch.zeros(1, len(vocabulary)))
        sets.append({vocabulary.tokens[i] for i in torch.nonzero(torch.isfinite(logits[0])).flatten().tolist()})
    return sets


def verse(vocabulary: Vocabulary) -> set[str]:
    return {t for t in vocabulary.tokens[5:] if t not in "，。？！；：、" and len(t) == 1}


def fitting(vocabulary: Vocabulary, tone: str) -> set[str]:
    tables = load_tables()
    return {t for t in verse(vocabulary) if token_prosody(tables, t)[0 if tone == "平" else 1]}


def write(net, vocabulary, form, processors_after_form, num_poems=16, seed=0, num_beams=1, temperature=1.5):
    chars, lines = SHAPES[form]
    return generate(
        net,
        vocabulary,
        num_poems,
        max_length=(chars + 1) * lines + 1,
        temperature=temperature,
        processors=[FormConstraint(vocabulary, chars, lines), *processors_after_form],
        generator=torch.Generator().manual_seed(seed),
        num_beams=num_beams,
    )


# --- which characters fit where --------------------------------------------------------------------------


def test_token_prosody_takes_every_reading():
    tables = load_tables()
    ping, ze, groups = token_prosody(tables, "山")
    assert (ping, ze) == (True, False) and groups == 1 << tables.group("删").index
    assert token_prosody(tables, "白")[:2] == (False, True)  # 入声
    assert token_prosody(tables, "看")[:2] == (True, True)  # polyphonic
    # 宁 stands for 寧 (平) and for the old character 宁 (仄): it fits no fixed position
    assert token_prosody(tables, "宁") == (False, False, 0)
    assert token_prosody(tables, "干")[:2] == (True, False)  # 干 乾 平, 幹 平 or 仄: surely fits 平
    assert token_prosody(tables, "，") == (False, False, 0)


def test_strict_tones_of_a_given_pattern(vocabulary):
    def processor():
        return ProsodyConstraint(vocabulary, "五绝", tones="strict", pattern="仄起首句不入韵", rhyme=None)

    # a B b A; line 1 is 中仄平平仄, line 2 平平仄仄平
    first, second, third = allowed(processor, vocabulary, ["", "白", "白日"])
    assert first >= verse(vocabulary)  # free
    assert second == fitting(vocabulary, "仄")
    assert third == fitting(vocabulary, "平")
    line2 = allowed(processor, vocabulary, ["白日依山尽，"])[0]
    assert line2 == fitting(vocabulary, "平")  # the first character of a B line is fixed in strict


def test_loose_tones_keep_2_4_6_the_ends_and_the_gu_ping_guard(vocabulary):
    def processor():
        return ProsodyConstraint(vocabulary, "五绝", tones="loose", pattern="仄起首句不入韵", rhyme=None)

    after = allowed(processor, vocabulary, ["白", "白日", "白日依", "白日依山", "白日依山尽，"])
    assert after[0] == fitting(vocabulary, "仄")  # 2nd
    assert after[1] >= verse(vocabulary)  # 3rd: free (一三五不论)
    assert after[2] == fitting(vocabulary, "平")  # 4th
    assert after[3] == fitting(vocabulary, "仄")  # the line's end: 仄, it does not rhyme
    assert after[4] == fitting(vocabulary, "平")  # B line's 1st: kept, or 仄平仄仄平 would be 孤平


def test_pattern_auto_settles_on_the_first_lines_second_character(vocabulary):
    processor = ProsodyConstraint(vocabulary, "五绝", tones="strict", pattern="auto", rhyme=None)
    decode = decode_state(vocabulary, ["白日", "春风"])
    processor(decode, torch.zeros(2, len(vocabulary)))
    assert processor.patterns.tolist() == [0b0011, 0b1100]  # 仄起 (both variants), 平起


def test_rhyme_group_given_and_auto(vocabulary):
    tables = load_tables()
    you = {t for t in verse(vocabulary) if token_prosody(tables, t)[2] >> tables.group("尤").index & 1}

    def given():
        return ProsodyConstraint(vocabulary, "五绝", tones="strict", pattern="仄起首句不入韵", rhyme="尤")

    def auto():
        return ProsodyConstraint(vocabulary, "五绝", tones="strict", pattern="仄起首句不入韵", rhyme="auto")

    assert allowed(given, vocabulary, ["白日依山尽，黄河入海"])[0] == you
    line4 = allowed(auto, vocabulary, ["白日依山尽，黄河入海流。欲穷千里目，更上一层"])[0]
    assert line4 == you and "楼" in line4 and "山" not in line4


@pytest.mark.parametrize("form", list(SHAPES))
@pytest.mark.parametrize("tones", ["strict", "loose"])
def test_every_poem_passes_the_check(net, vocabulary, form, tones):
    poems = write(net, vocabulary, form, [ProsodyConstraint(vocabulary, form, tones=tones, rhyme="auto")])
    for poem in poems:
        result = check_poem(poem, tones=tones, strict=True)  # warnings (孤平 三平尾 邻韵) count too
        assert result.passed and result.form.value == form, (poem, [str(f) for f in result.violations])


def test_tones_off_keeps_the_rhyme(net, vocabulary):
    poems = write(net, vocabulary, "七律", [ProsodyConstraint(vocabulary, "七律", tones="off", rhyme="auto")])
    for poem in poems:
        result = check_poem(poem, tones="loose")
        assert not [f for f in result.findings if f.rule in ("rhyme", "邻韵") and f.line > 1], poem


# --- combined with forced characters, no-repeat and beams -------------------------------------------------


def test_acrostic_no_repeat_and_beams(net, vocabulary):
    heads = "春山秋月"
    for num_beams in (1, 3):
        forced = acrostic_constraint(vocabulary, heads, 5, 8)
        processors = [
            ProsodyConstraint(
                vocabulary, "五律", "strict", "auto", "auto", forced.forced, reserved=heads, no_repeat=True
            ),
            NoRepeat(vocabulary, reserved=heads),
            forced,
        ]
        poems = write(net, vocabulary, "五律", processors, num_poems=8 // num_beams, num_beams=num_beams)
        for poem in poems:
            assert check_poem(poem, strict=True).passed, poem
            assert "".join(line[0] for line in split_lines(poem)[:4]) == heads
            characters = "".join(split_lines(poem))
            assert len(set(characters)) >= len(characters) - 4, poem  # only reduplications (青青) repeat


def test_first_line_with_a_given_rhyme_group(net, vocabulary):
    forced = first_line_constraint(vocabulary, "白日依山尽", 5)
    processors = [ProsodyConstraint(vocabulary, "五绝", "strict", "auto", "东", forced.forced), forced]
    for poem in write(net, vocabulary, "五绝", processors, num_poems=16):
        result = check_poem(poem, strict=True)
        assert poem.startswith("白日依山尽，") and result.passed and result.rhyme_group.name == "一东", poem


def test_forced_characters_choose_the_patterns_they_fit(vocabulary):
    forced = acrostic_constraint(vocabulary, "春夏秋冬", 5, 4).forced  # 夏 is 仄: not on a B line's 1st
    processor = ProsodyConstraint(vocabulary, "五绝", "strict", "auto", "auto", forced)
    # 仄起 patterns fix 平 at the head of line 2 (a B b A, A B b A); the 平起 ones leave it free
    assert processor._start_patterns == 0b1100
    with pytest.raises(ConfigError, match="fit no 五绝 pattern .*夏 .line 2, position 1. is 仄, it needs 平"):
        ProsodyConstraint(vocabulary, "五绝", "strict", "仄起首句不入韵", "auto", forced)
    first = first_line_constraint(vocabulary, "寥落古行宫", 5).forced  # 宫 rhymes in 东, not in 先
    with pytest.raises(ConfigError, match="宫 .line 1, position 5. cannot rhyme there"):
        ProsodyConstraint(vocabulary, "五绝", "strict", "auto", "先", first)


def test_beam_reorder_moves_the_state(vocabulary):
    processor = ProsodyConstraint(vocabulary, "五绝", "strict", "auto", "auto", no_repeat=True)
    decode = decode_state(vocabulary, ["白日依山尽，黄河入海流。"])
    processor(decode, torch.zeros(1, len(vocabulary)))
    single = {name: getattr(processor, name).clone() for name in processor._row_state}
    wide = ProsodyConstraint(vocabulary, "五绝", "strict", "auto", "auto", no_repeat=True)
    state = decode_state(vocabulary, ["白日依山尽，黄河入海流。", "春风依山尽，黄河入海流。"])
    wide(state, torch.zeros(2, len(vocabulary)))
    wide.reorder(torch.tensor([0, 0, 1]))
    for name, value in single.items():
        moved = getattr(wide, name)
        assert moved.shape[0] == 3 and torch.equal(moved[0], value[0]) and torch.equal(moved[1], value[0]), name
    assert bin(int(wide.groups[0])).count("1") == 1  # 流 set the group


# --- requests it refuses ------------------------------------------------------------------------------------


def test_refusals(vocabulary):
    with pytest.raises(ConfigError, match="regular form"):
        ProsodyConstraint(vocabulary, "other", "strict")
    with pytest.raises(ConfigError, match="tone mode"):
        ProsodyConstraint(vocabulary, "五绝", "medium")
    with pytest.raises(ConfigError, match="unknown rhyme group"):
        ProsodyConstraint(vocabulary, "五绝", "strict", rhyme="董")
    with pytest.raises(ConfigError, match="unknown pattern"):
        ProsodyConstraint(vocabulary, "五绝", "strict", pattern="平起")
    with pytest.raises(ConfigError, match="needs --tones"):
        ProsodyConstraint(vocabulary, "五绝", "off", rhyme=None)
    level = Vocabulary.build(["依山穷千，"])
    with pytest.raises(ConfigError, match="no character known to be 仄"):
        ProsodyConstraint(level, "五绝", "strict", rhyme="auto")
    with pytest.raises(ConfigError, match="has 0 characters of 下平声十五咸, a 五律 needs 5"):
        ProsodyConstraint(Vocabulary.build(["白日依山尽，欲穷千里目。"]), "五律", "strict", rhyme="咸", no_repeat=True)


# --- through the command ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def command_results(tmp_path_factory, small_corpus):
    """A tiny model trained for a few steps; `tangrnn generate` with tones and rhyme; `tangrnn check` on its output."""
    import lightning.pytorch as pl
    from conftest import run_batch

    from tangrnn_core.data.datamodule import PoetryDataModule
    from tangrnn_core.module import PoetryModel

    tmp = tmp_path_factory.mktemp("prosody_generate")
    data = PoetryDataModule(corpus=str(small_corpus), batch_size=16, val_fraction=0.1, test_fraction=0.1)
    model = PoetryModel(
        vocab_size=data.vocab_size,
        line_end_ids=data.line_end_ids,
        architecture="lstm",
        architecture_options={"embedding_size": 16, "hidden_size": 16, "num_layers": 1},
    )
    trainer = pl.Trainer(
        max_steps=3, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model, datamodule=data)
    checkpoint = str(tmp / "model.ckpt")
    trainer.save_checkpoint(checkpoint)
    generate_ = ["generate", "--ckpt_path", checkpoint, "--output", "json", "--temperature", "1.2"]
    cases = {
        "strict": [
            *generate_,
            "--form",
            "五绝",
            "--tones",
            "strict",
            "--rhyme",
            "auto",
            "--num_poems",
            "32",
            "--seed",
            "1",
        ],
        "loose lushi": [*generate_, "--form", "七律", "--tones", "loose", "--rhyme", "auto", "--num_poems", "8"],
        "acrostic": [
            *generate_,
            "--form",
            "五绝",
            "--tones",
            "strict",
            "--rhyme",
            "auto",
            "--acrostic",
            "春山",
            "--no_repeat",
            "true",
            "--num_beams",
            "2",
            "--num_poems",
            "8",
        ],
        "pattern and group": [
            *generate_,
            "--form",
            "七绝",
            "--tones",
            "strict",
            "--pattern",
            "平起首句入韵",
            "--rhyme",
            "阳",
            "--num_poems",
            "8",
        ],
        # refused, one line each
        "no form": [*generate_, "--tones", "strict"],
        "unknown group": [*generate_, "--form", "五绝", "--rhyme", "董"],
        "unfit heads": [
            *generate_,
            "--form",
            "五绝",
            "--tones",
            "strict",
            "--pattern",
            "仄起首句不入韵",
            "--acrostic",
            "春夏",
        ],
    }
    results = run_batch({name: {"argv": argv} for name, argv in cases.items()}, tmp)
    checks = {}
    for name in ("strict", "loose lushi", "acrostic", "pattern and group"):
        assert results[name].returncode == 0, results[name].stderr
        tones = "loose" if name == "loose lushi" else "strict"
        # `tangrnn check` reads the JSON lines `tangrnn generate --output json` prints; it imports no torch, so
        # a process of its own is quick.
        checks[name] = subprocess.run(
            [sys.executable, "-m", "tangrnn_core", "check", "--tones", tones, "--strict", "--output", "json"],
            input=results[name].stdout,
            capture_output=True,
            text=True,
            timeout=120,
        )
    return results, checks


def test_every_generated_poem_passes_tangrnn_check(command_results):
    generated, checked = command_results
    for result in checked.values():
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert result.returncode == 0, [r["violations"] for r in records if not r["passed"]]
        assert records and all(r["passed"] for r in records)
    strict = [json.loads(line) for line in checked["strict"].stdout.splitlines()]
    assert len(strict) == 32 and {r["form"] for r in strict} == {"五绝"}
    assert {r["pattern"] for r in [json.loads(line) for line in checked["pattern and group"].stdout.splitlines()]} == {
        "平起首句入韵"
    }
    groups = {json.loads(line)["rhyme_group"] for line in checked["pattern and group"].stdout.splitlines()}
    assert groups == {"七阳"}
    for line in generated["acrostic"].stdout.splitlines():
        assert [verse[0] for verse in json.loads(line)["lines"][:2]] == ["春", "山"]


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("no form", "need a regular form"),
        ("unknown group", "unknown rhyme group '董'"),
        ("unfit heads", "fit no 五绝 pattern"),
    ],
)
def test_refused_through_the_command(command_results, case, fragment):
    from conftest import assert_one_line_error

    result = command_results[0][case]
    assert result.returncode == 2
    assert_one_line_error(result, fragment)
