"""Constraint processors (form, forced characters, no repetition) over a tiny untrained LSTM and random logits."""

from __future__ import annotations

import pytest
import torch

from tangrnn_core.data.forms import Form, classify, split_lines_with_marks
from tangrnn_core.data.normalize import LINE_END_MARKS
from tangrnn_core.data.vocab import Vocabulary
from tangrnn_core.decoding import DecodeState, generate
from tangrnn_core.decoding.constraints import (
    ForcedCharacters,
    FormConstraint,
    NoRepeat,
    acrostic_constraint,
    first_line_constraint,
    form_constraint_for,
)
from tangrnn_core.decoding.pipeline import build_processors
from tangrnn_core.decoding.plan import plan_request
from tangrnn_core.decoding.request import PoemRequest
from tangrnn_core.decoding.tokens import is_punctuation, verse_character_mask
from tangrnn_core.decoding.write import write_poems
from tangrnn_core.errors import ConfigError
from tangrnn_recurrent import LSTM

POEMS = [
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
    "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。",
    "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",
    "千山鸟飞绝，万径人踪灭。孤舟蓑笠翁，独钓寒江雪。",
    "山中相送罢，日暮掩柴扉。春草明年绿，王孙归不归？",
    "日暮苍山远，天寒白屋贫。柴门闻犬吠，风雪夜归人。",
    "红豆生南国，春来发几枝。愿君多采撷，此物最相思。",
    "离离原上草，一岁一枯荣。野火烧不尽，春风吹又生。",
    "移舟泊烟渚，日暮客愁新。野旷天低树，江清月近人。",
    "绿树阴浓夏日长，楼台倒影入池塘。水晶帘动微风起，满架蔷薇一院香。",
    "朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。",
    "独在异乡为异客，每逢佳节倍思亲。遥知兄弟登高处，遍插茱萸少一人。",
    "君问归期未有期，巴山夜雨涨秋池。何当共剪西窗烛，却话巴山夜雨时。",
    "月落乌啼霜满天，江枫渔火对愁眠。姑苏城外寒山寺，夜半钟声到客船。",
    "故人西辞黄鹤楼，烟花三月下扬州。孤帆远影碧空尽，唯见长江天际流。",
    "空山新雨后，天气晚来秋。明月松间照，清泉石上流。竹喧归浣女，莲动下渔舟。随意春芳歇，王孙自可留。",
    "国破山河在，城春草木深。感时花溅泪，恨别鸟惊心。烽火连三月，家书抵万金。白头搔更短，浑欲不胜簪。",
    "天时人事日相催，冬至阳生春又来。刺绣五纹添弱线，吹葭六管动飞灰。"
    "岸容待腊将舒柳，山意冲寒欲放梅。云物不殊乡国异，教儿且覆掌中杯。",
    "风急天高猿啸哀，渚清沙白鸟飞回。无边落木萧萧下，不尽长江滚滚来。"
    "万里悲秋常作客，百年多病独登台。艰难苦恨繁霜鬓，潦倒新停浊酒杯。",
    "锦瑟无端五十弦，一弦一柱思华年。庄生晓梦迷蝴蝶，望帝春心托杜鹃。"
    "沧海月明珠有泪，蓝田日暖玉生烟。此情可待成追忆，只是当时已惘然。",
]
SHAPES = [(5, 4), (7, 4), (5, 8), (7, 8)]
NUM_POEMS = 64


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.build(POEMS)


@pytest.fixture(scope="module")
def net(vocabulary) -> LSTM:
    torch.manual_seed(0)
    lstm = LSTM(vocabulary.token_spec(LINE_END_MARKS), embedding_size=8, hidden_size=8, num_layers=1, dropout=0.0)
    with torch.no_grad():
        lstm.output.bias.zero_()
    return lstm


class NeverDead:
    """Asserts that the processors before it left every row at least one allowed id."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, state: DecodeState, logits: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        assert torch.isfinite(logits).any(dim=1).all(), f"a row is all -inf at step {state.step}"
        return logits


class Bias:
    """Adds ``amount`` to one id's logit (where it is not already forbidden)."""

    def __init__(self, token_id: int, amount: float = 50.0) -> None:
        self.token_id, self.amount = token_id, amount

    def __call__(self, state: DecodeState, logits: torch.Tensor) -> torch.Tensor:
        logits[:, self.token_id] += self.amount
        return logits


class QuestionAtEveryLineEnd:
    """After a FormConstraint: wherever a line may end, allows ``？`` (even for ``，``) and makes it near certain."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.comma, self.question = vocabulary.id_of("，"), vocabulary.id_of("？")

    def __call__(self, state: DecodeState, logits: torch.Tensor) -> torch.Tensor:
        at_end = torch.isfinite(logits[:, self.comma]) | torch.isfinite(logits[:, self.question])
        logits[:, self.question] = torch.where(at_end, 50.0, logits[:, self.question])
        return logits


class FavourRepeating:
    """Makes repeating the previous token very likely (where the later processors allow it)."""

    def __call__(self, state: DecodeState, logits: torch.Tensor) -> torch.Tensor:
        if state.step:
            logits[torch.arange(logits.shape[0]), state.generated[:, -1]] += 30.0
        return logits


def run(net, vocabulary, processors, seed=0, num_poems=NUM_POEMS):
    guard = NeverDead()
    poems = generate(
        net,
        vocabulary,
        num_poems,
        temperature=1.5,
        processors=[*processors, guard],
        generator=torch.Generator().manual_seed(seed),
    )
    assert guard.calls > 0
    return poems


def assert_shape(poem: str, chars: int, lines: int) -> list[str]:
    parts = split_lines_with_marks(poem)
    assert len(parts) == lines, poem
    for index, part in enumerate(parts):
        assert len(part) == chars + 1, poem
        assert not any(is_punctuation(c) for c in part[:-1]), poem
        assert part[-1] in ("，" if index % 2 == 0 else "。？！"), poem
    assert "".join(parts) == poem  # nothing after the last mark
    assert classify(poem) == Form(form_name(chars, lines))
    return parts


def form_name(chars: int, lines: int) -> str:
    return {(5, 4): "五绝", (7, 4): "七绝", (5, 8): "五律", (7, 8): "七律"}[(chars, lines)]


# --- token classes ---------------------------------------------------------------------------------------


def test_punctuation_and_verse_characters():
    vocab = Vocabulary(
        ["<pad>", "<unk>", "<bos>", "<eos>", "<mask>", "春", "〇", "，", "。", "？", "、", "·", "…", "《"]
    )
    assert verse_character_mask(vocab).tolist() == [False] * 5 + [True, True] + [False] * 7
    assert all(is_punctuation(t) for t in "，。？！；：、·…《")
    assert not any(is_punctuation(t) for t in "春〇萧")


# --- (a) the form's shape ---------------------------------------------------------------------------------


@pytest.mark.parametrize("chars, lines", SHAPES)
def test_every_poem_has_the_form(net, vocabulary, chars, lines):
    poems = run(net, vocabulary, [FormConstraint(vocabulary, chars, lines)])
    assert len(poems) == NUM_POEMS
    for poem in poems:
        assert_shape(poem, chars, lines)


def test_form_allows_question_and_exclamation_marks_only_at_even_line_ends(net, vocabulary):
    poems = run(net, vocabulary, [Bias(vocabulary.id_of("？")), FormConstraint(vocabulary, 5, 4)])
    for poem in poems:
        parts = assert_shape(poem, 5, 4)
        assert [p[-1] for p in parts] == ["，", "？", "，", "？"]


def test_form_on_random_logits_with_a_hand_loop(vocabulary):
    generator = torch.Generator().manual_seed(3)
    constraint, batch = FormConstraint(vocabulary, 7, 4), 32
    state = DecodeState(torch.empty((batch, 0), dtype=torch.long), torch.zeros(batch, dtype=torch.bool), vocabulary)
    for _ in range(33):
        logits = torch.randn(batch, len(vocabulary), generator=generator) * 5
        logits[:, :3] = float("-inf")
        logits = constraint(state, logits)
        tokens = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator).squeeze(1)
        state.generated = torch.cat([state.generated, tokens[:, None]], dim=1)
    assert (state.generated[:, -1] == vocabulary.eos_id).all()
    for row in state.generated:
        assert_shape(vocabulary.decode(row.tolist()), 7, 4)


# --- (b) acrostics ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_beams", [1, 3])
def test_the_forced_eos_step_is_not_decoded(net, vocabulary, num_beams):
    request = PoemRequest(
        form="五绝", num_poems=8, temperature=1.5, top_p=1.0, seed=3, num_beams=num_beams, tones="strict"
    )
    plan = plan_request(vocabulary, request)
    assert plan.max_steps == 24  # 4 lines of 5 characters and a mark; the <eos> is forced
    with_eos_step = generate(
        net,
        vocabulary,
        8,
        max_length=25,
        temperature=1.5,
        processors=build_processors(vocabulary, plan),
        generator=torch.Generator().manual_seed(3),
        num_beams=num_beams,
    )
    poems = write_poems(net, vocabulary, request)
    assert poems == with_eos_step
    for poem in poems:
        assert_shape(poem, 5, 4)
    assert plan_request(vocabulary, PoemRequest(max_length=40)).max_steps == 40  # no fixed shape: the bound


def test_each_batch_is_handed_over_as_it_is_written(net, vocabulary):
    batches = []
    request = PoemRequest(form="五绝", num_poems=5, batch_size=2, seed=4)
    poems = write_poems(net, vocabulary, request, on_batch=batches.append)
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert [poem for batch in batches for poem in batch] == poems


def test_beams_count_toward_the_batch_size(net, vocabulary):
    request = PoemRequest(form="五绝", num_poems=3, num_beams=3, batch_size=4, temperature=1.0, seed=5)
    poems = write_poems(net, vocabulary, request)  # 4 rows hold one poem of 3 beams: three batches
    assert len(poems) == 3
    for poem in poems:
        assert_shape(poem, 5, 4)
    assert poems[:1] == write_poems(net, vocabulary, PoemRequest(**{**request.__dict__, "num_poems": 1}))
    with pytest.raises(ConfigError, match="num_poems must be at least 1"):
        write_poems(net, vocabulary, PoemRequest(form="五绝", num_poems=0))


def test_acrostic_heads_open_the_lines(net, vocabulary):
    processors = [FormConstraint(vocabulary, 7, 4), acrostic_constraint(vocabulary, "春 夏秋冬", 7, 4)]
    for poem in run(net, vocabulary, processors):
        assert [line[0] for line in assert_shape(poem, 7, 4)] == list("春夏秋冬")


@pytest.mark.parametrize("after_form", [False, True])
def test_acrostic_keys_on_line_position_when_lines_end_with_question_marks(net, vocabulary, after_form):
    question = vocabulary.id_of("？")
    processors = (
        [FormConstraint(vocabulary, 5, 8), QuestionAtEveryLineEnd(vocabulary)]
        if after_form
        else [Bias(question), FormConstraint(vocabulary, 5, 8)]
    )
    processors.append(acrostic_constraint(vocabulary, "春夏秋冬", 5, 8))
    for poem in run(net, vocabulary, processors, seed=5):
        parts = split_lines_with_marks(poem)
        assert len(parts) == 8 and all(len(p) == 6 for p in parts), poem
        assert [p[0] for p in parts[:4]] == list("春夏秋冬"), poem
        marks = [p[-1] for p in parts]
        assert marks == (["？"] * 8 if after_form else ["，", "？"] * 4), poem


def test_fewer_heads_than_lines_leave_the_other_lines_free(net, vocabulary):
    processors = [FormConstraint(vocabulary, 5, 4), acrostic_constraint(vocabulary, "秋月", 5, 4)]
    poems = run(net, vocabulary, processors)
    for poem in poems:
        assert [line[0] for line in assert_shape(poem, 5, 4)[:2]] == ["秋", "月"]
    assert len({poem[12] for poem in poems}) > 1


def test_reserved_heads_appear_only_where_forced(net, vocabulary):
    heads = "春夏秋冬"
    processors = [
        FormConstraint(vocabulary, 5, 4),
        NoRepeat(vocabulary, reserved=heads),
        acrostic_constraint(vocabulary, heads, 5, 4),
    ]
    for poem in run(net, vocabulary, processors):
        lines = assert_shape(poem, 5, 4)
        assert [line[0] for line in lines] == list(heads)
        assert not set("".join(line[1:] for line in lines)) & set(heads), poem
        assert verse_repeats(poem) == [], poem


# --- (c) a given first line -------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["白日依山尽", "白日依山尽，", " 白日 依山尽 "])
def test_first_line_is_kept_verbatim(net, vocabulary, given):
    processors = [FormConstraint(vocabulary, 5, 8), NoRepeat(vocabulary), first_line_constraint(vocabulary, given, 5)]
    poems = run(net, vocabulary, processors)
    for poem in poems:
        assert assert_shape(poem, 5, 8)[0] == "白日依山尽，"
    assert len(set(poems)) > 1


def test_a_forced_character_overrides_no_repeat(net, vocabulary):
    # line 1 opens with the first line's first character: NoRepeat forbids it, the forced character wins
    forced = {**{(0, i): c for i, c in enumerate("明月松间照")}, (1, 0): "明", (1, 1): "月"}
    processors = [FormConstraint(vocabulary, 5, 4), NoRepeat(vocabulary), ForcedCharacters(vocabulary, forced, 5)]
    for poem in run(net, vocabulary, processors):
        assert poem.startswith("明月松间照，明月")


# --- (d) no repetition ------------------------------------------------------------------------------------


def verse_repeats(poem: str) -> list[str]:
    """Characters used twice, not counting one immediate reduplication inside a line."""
    bad = []
    for line in split_lines_with_marks(poem):
        for k in range(2, len(line)):
            if line[k] == line[k - 1] == line[k - 2]:
                bad.append(line[k])
    seen = set()
    for line in split_lines_with_marks(poem):
        chars = [c for k, c in enumerate(line) if not is_punctuation(c) and (k == 0 or c != line[k - 1])]
        for c in chars:
            if c in seen:
                bad.append(c)
            seen.add(c)
    return bad


@pytest.mark.parametrize("favour_repeats", [False, True])
def test_no_character_twice_except_reduplication(net, vocabulary, favour_repeats):
    processors = [FavourRepeating()] if favour_repeats else []
    processors += [FormConstraint(vocabulary, 7, 8), NoRepeat(vocabulary)]
    poems = run(net, vocabulary, processors, seed=2)
    doubled = 0
    for poem in poems:
        assert_shape(poem, 7, 8)
        assert verse_repeats(poem) == [], poem
        doubled += sum(line[k] == line[k + 1] for line in split_lines_with_marks(poem) for k in range(len(line) - 1))
    if favour_repeats:
        assert doubled >= NUM_POEMS * 8  # reduplication happens (about three times a line)


def test_without_no_repeat_characters_do_repeat(net, vocabulary):
    poems = run(net, vocabulary, [FormConstraint(vocabulary, 7, 8)], seed=2)
    assert any(verse_repeats(poem) for poem in poems)


def step_through(processor, vocabulary, text: str) -> torch.Tensor:
    """The logits ``processor`` leaves after each prefix of ``text`` (one poem, all-zero logits)."""
    assert not vocabulary.unknown(text)
    ids = vocabulary.encode(text)
    state = DecodeState(torch.empty((1, 0), dtype=torch.long), torch.zeros(1, dtype=torch.bool), vocabulary)
    out = []
    for k in range(len(ids) + 1):
        state.generated = torch.tensor([ids[:k]], dtype=torch.long)
        out.append(processor(state, torch.zeros(1, len(vocabulary)))[0])
    return torch.stack(out)


def allowed(vocabulary, row: torch.Tensor, char: str) -> bool:
    return bool(torch.isfinite(row[vocabulary.id_of(char)]))


def test_no_repeat_rules_step_by_step(vocabulary):
    after = step_through(NoRepeat(vocabulary), vocabulary, "江山萧萧萧，月")
    assert allowed(vocabulary, after[0], "江")
    assert allowed(vocabulary, after[1], "江")  # 江江: XX allowed
    assert allowed(vocabulary, after[2], "山") and not allowed(vocabulary, after[2], "江")  # X?X no
    assert allowed(vocabulary, after[3], "萧")  # 萧萧
    assert not allowed(vocabulary, after[4], "萧")  # 萧萧萧 no
    assert allowed(vocabulary, after[5], "，") and allowed(vocabulary, after[5], "。")  # punctuation free
    assert not allowed(vocabulary, after[6], "萧") and not allowed(vocabulary, after[6], "山")  # not on two lines
    assert allowed(vocabulary, after[7], "月") and allowed(vocabulary, after[7], "明")
    assert not allowed(vocabulary, after[7], "江")


def test_no_repeat_reserves_characters(vocabulary):
    after = step_through(NoRepeat(vocabulary, reserved="春，"), vocabulary, "春")  # 春 as if forced
    assert not allowed(vocabulary, after[0], "春") and allowed(vocabulary, after[0], "，")
    assert not allowed(vocabulary, after[1], "春")  # a reserved character is not doubled either


def test_no_repeat_yields_rather_than_forbid_everything():
    vocab = Vocabulary(["<pad>", "<unk>", "<bos>", "<eos>", "<mask>", "，", "。", "天", "地"])
    constraint, no_repeat = FormConstraint(vocab, 2, 2), NoRepeat(vocab)
    state = DecodeState(torch.tensor([[7, 8, 5]]), torch.zeros(1, dtype=torch.bool), vocab)
    logits = no_repeat(state, constraint(state, torch.zeros(1, len(vocab))))
    assert torch.isfinite(logits[0, [7, 8]]).all() and torch.isinf(logits[0, [3, 5, 6]]).all()


# --- the trackers over a batch and restarts -----------------------------------------------------------------


def test_processors_restart_on_a_new_decode(net, vocabulary):
    processors = [
        FormConstraint(vocabulary, 5, 4),
        NoRepeat(vocabulary, reserved="春夏"),
        acrostic_constraint(vocabulary, "春夏", 5, 4),
    ]
    first = run(net, vocabulary, processors, num_poems=8)
    second = run(net, vocabulary, processors, num_poems=3)  # same instances, another batch size
    for poem in first + second:
        assert [line[0] for line in assert_shape(poem, 5, 4)[:2]] == ["春", "夏"]
        assert verse_repeats(poem) == []


def random_histories(vocabulary, batch: int, steps: int, seed: int) -> torch.Tensor:
    """Histories in which the poems are at different places: verse characters with a line-end mark one time in
    three (any of ，。？！), and <eos> then <pad> in some rows."""
    generator = torch.Generator().manual_seed(seed)
    verse = torch.nonzero(verse_character_mask(vocabulary)).flatten()
    marks = torch.tensor([vocabulary.id_of(m) for m in "，。？！"])
    picks = verse[torch.randint(len(verse), (batch, steps), generator=generator)]
    is_mark = torch.rand(batch, steps, generator=generator) < 1 / 3
    history = torch.where(is_mark, marks[torch.randint(4, (batch, steps), generator=generator)], picks)
    history[: batch // 4, steps // 2] = vocabulary.eos_id
    history[: batch // 4, steps // 2 + 1 :] = vocabulary.pad_id
    return history


@pytest.mark.parametrize(
    "make",
    [
        lambda v: FormConstraint(v, 2, 3),
        lambda v: NoRepeat(v, reserved="春"),
        lambda v: ForcedCharacters(v, {(0, 1): "春", (1, 0): "夏", (2, 1): "春", (3, 0): "冬"}, 2),
    ],
    ids=["form", "no_repeat", "forced"],
)
def test_a_batch_of_poems_at_different_places_is_masked_row_by_row(vocabulary, make):
    batch, steps = 48, 10
    history = random_histories(vocabulary, batch, steps, seed=4)
    logits = torch.randn(steps + 1, batch, len(vocabulary), generator=torch.Generator().manual_seed(9))
    finished = torch.zeros(batch, dtype=torch.bool)
    together, alone = make(vocabulary), [make(vocabulary) for _ in range(batch)]
    for k in range(steps + 1):
        finished = (history[:, :k] == vocabulary.eos_id).any(dim=1)
        state = DecodeState(history[:, :k], finished, vocabulary)
        got = together(state, logits[k].clone())
        for row in range(batch):
            one = DecodeState(history[row : row + 1, :k], finished[row : row + 1], vocabulary)
            expected = alone[row](one, logits[k, row : row + 1].clone())
            assert torch.equal(got[row : row + 1], expected), (k, row)


def test_a_late_first_call_replays_the_history(vocabulary):
    constraint = FormConstraint(vocabulary, 5, 4)
    ids = vocabulary.encode("白日依山尽，黄河入")
    state = DecodeState(torch.tensor([ids]), torch.zeros(1, dtype=torch.bool), vocabulary)
    logits = constraint(state, torch.zeros(1, len(vocabulary)))
    finite = torch.isfinite(logits[0])
    assert finite[verse_character_mask(vocabulary)].all() and not finite[~verse_character_mask(vocabulary)].any()
    state.generated = torch.tensor([ids + vocabulary.encode("海流")])
    logits = constraint(state, torch.zeros(1, len(vocabulary)))
    assert [vocabulary.tokens[i] for i in torch.nonzero(torch.isfinite(logits[0])).flatten()] == ["。", "？"]


# --- (e) configuration errors -------------------------------------------------------------------------------


def one_line_error(call, *needles):
    with pytest.raises(ConfigError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_form_constraint_errors(vocabulary):
    no_comma = Vocabulary(["<pad>", "<unk>", "<bos>", "<eos>", "<mask>", "春", "。"])
    no_stop = Vocabulary(["<pad>", "<unk>", "<bos>", "<eos>", "<mask>", "春", "，"])
    no_verse = Vocabulary(["<pad>", "<unk>", "<bos>", "<eos>", "<mask>", "，", "。", "、"])
    one_line_error(lambda: FormConstraint(no_comma, 5, 4), "'，'", "odd lines")
    one_line_error(lambda: FormConstraint(no_stop, 5, 4), "'。'", "even lines")
    one_line_error(lambda: FormConstraint(no_verse, 5, 4), "no verse characters")
    one_line_error(lambda: FormConstraint(vocabulary, 0, 4), "chars=0")


def test_form_constraint_for(vocabulary):
    assert (form_constraint_for(vocabulary, "五律").chars, form_constraint_for(vocabulary, "五律").lines) == (5, 8)
    assert form_constraint_for(vocabulary, Form.QIJUE, chars=7).lines == 4
    assert form_constraint_for(vocabulary, chars=7, lines=8).chars == 7
    one_line_error(lambda: form_constraint_for(vocabulary, "wujue", chars=7), "五绝 has 5 characters", "chars=7")
    one_line_error(lambda: form_constraint_for(vocabulary, "qilv", lines=4), "七律 has 8 lines", "lines=4")
    one_line_error(lambda: form_constraint_for(vocabulary, chars=6, lines=4), "chars must be 5 or 7", "6")
    one_line_error(lambda: form_constraint_for(vocabulary, chars=5, lines=6), "lines must be 4 or 8", "6")
    one_line_error(lambda: form_constraint_for(vocabulary, chars=5), "give --lines")
    one_line_error(lambda: form_constraint_for(vocabulary, lines=4), "give --chars")
    one_line_error(lambda: form_constraint_for(vocabulary), "no form given")
    one_line_error(lambda: form_constraint_for(vocabulary, "other"), "no fixed shape")
    one_line_error(lambda: form_constraint_for(vocabulary, "sonnet"), "unknown poem form")


def test_forced_character_errors(vocabulary):
    one_line_error(
        lambda: ForcedCharacters(vocabulary, {(0, 0): "龘", (1, 0): "春", (2, 0): "靐"}, 5),
        "characters not in the model's vocabulary: 龘, 靐; choose other characters",
    )
    one_line_error(lambda: ForcedCharacters(vocabulary, {(0, 5): "春"}, 5), "position 5", "0 to 4")
    one_line_error(lambda: ForcedCharacters(vocabulary, {(-1, 0): "春"}, 5), "line -1")
    one_line_error(lambda: ForcedCharacters(vocabulary, {(0, 0): "春夏"}, 5), "one character")
    one_line_error(lambda: ForcedCharacters(vocabulary, {(0, 0): "，"}, 5), "not punctuation: ，")


def test_acrostic_errors(vocabulary):
    one_line_error(lambda: acrostic_constraint(vocabulary, "春夏秋冬月", 5, 4), "5 heads but the form has 4 lines")
    one_line_error(lambda: acrostic_constraint(vocabulary, "  ", 5, 4), "no acrostic heads")
    one_line_error(lambda: acrostic_constraint(vocabulary, "春龘冬靐", 5, 4), "vocabulary: 龘, 靐")
    one_line_error(lambda: acrostic_constraint(vocabulary, "春，夏", 5, 4), "punctuation: ，")


def test_first_line_errors(vocabulary):
    one_line_error(lambda: first_line_constraint(vocabulary, "白日依山", 5), "has 4 characters", "needs 5")
    one_line_error(lambda: first_line_constraint(vocabulary, "白日依山尽，", 7), "has 5 characters", "needs 7")
    one_line_error(lambda: first_line_constraint(vocabulary, "白日，依山尽", 5), "punctuation (，)")
    one_line_error(lambda: first_line_constraint(vocabulary, "白日依山尽。", 5), "punctuation (。)")
    one_line_error(lambda: first_line_constraint(vocabulary, "白日依龘尽", 5), "vocabulary: 龘")
