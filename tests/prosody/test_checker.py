"""The checker on the test poems of POETICS.md (all pass) and on altered copies (each fails where altered)."""

from __future__ import annotations

import pytest

from tangrnn_core.data.forms import Form
from tangrnn_core.errors import ConfigError
from tangrnn_core.prosody.checker import Severity, check_poem
from tangrnn_core.prosody.command import prepare_text, split_poems
from tangrnn_core.prosody.patterns import PATTERN_NAMES, Pattern, ToneMode, pattern_named, patterns_for
from tangrnn_core.prosody.tables import Tone

# The test poem of each of the sixteen patterns named in POETICS.md, with the pattern it follows.
POEMS = {
    "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。": "仄起首句不入韵 五绝",
    "独在异乡为异客，每逢佳节倍思亲。遥知兄弟登高处，遍插茱萸少一人。": "仄起首句不入韵 七绝",
    "寥落古行宫，宫花寂寞红。白头宫女在，闲坐说玄宗。": "仄起首句入韵 五绝",
    "君问归期未有期，巴山夜雨涨秋池。何当共剪西窗烛，却话巴山夜雨时。": "仄起首句入韵 七绝",
    "鸣筝金粟柱，素手玉房前。欲得周郎顾，时时误拂弦。": "平起首句不入韵 五绝",
    "曾栽杨柳江南岸，一别江南两度春。遥忆青青江岸上，不知攀折是何人。": "平起首句不入韵 七绝",
    "花明绮陌春，柳拂御沟新。为报辽阳客，流芳不待人。": "平起首句入韵 五绝",
    "朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。": "平起首句入韵 七绝",
    "国破山河在，城春草木深。感时花溅泪，恨别鸟惊心。烽火连三月，家书抵万金。白头搔更短，浑欲不胜簪。": "仄起首句不入韵 五律",
    "红叶晚萧萧，长亭酒一瓢。残云归太华，疏雨过中条。树色随山迥，河声入海遥。帝乡明日到，犹自梦渔樵。": "仄起首句入韵 五律",
    "空山新雨后，天气晚来秋。明月松间照，清泉石上流。竹喧归浣女，莲动下渔舟。随意春芳歇，王孙自可留。": "平起首句不入韵 五律",
    "深居俯夹城，春去夏犹清。天意怜幽草，人间重晚晴。并添高阁迥，微注小窗明。越鸟巢干后，归飞体更轻。": "平起首句入韵 五律",
    "一封朝奏九重天，夕贬潮州路八千。欲为圣明除弊事，肯将衰朽惜残年。"
    "云横秦岭家何在，雪拥蓝关马不前。知汝远来应有意，好收吾骨瘴江边。": "平起首句入韵 七律",
    "巴山楚水凄凉地，二十三年弃置身。怀旧空吟闻笛赋，到乡翻似烂柯人。"
    "沉舟侧畔千帆过，病树前头万木春。今日听君歌一曲，暂凭杯酒长精神。": "平起首句不入韵 七律",
    "锦瑟无端五十弦，一弦一柱思华年。庄生晓梦迷蝴蝶，望帝春心托杜鹃。"
    "沧海月明珠有泪，蓝田日暖玉生烟。此情可待成追忆，只是当时已惘然。": "仄起首句入韵 七律",
    "岁暮阴阳催短景，天涯霜雪霁寒宵。五更鼓角声悲壮，三峡星河影动摇。"
    "野哭千家闻战伐，夷歌数处起渔樵。卧龙跃马终黄土，人事音书漫寂寥。": "仄起首句不入韵 七律",
}
DENGGUAN = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"


def altered(poem: str, line: int, position: int, char: str) -> str:
    """``poem`` with the character at 1-based ``(line, position)`` replaced."""
    lines = [poem[i : i + 6] for i in range(0, len(poem), 6)] if "，" in poem[5:6] else None
    assert lines is not None, "five-character poems only"
    text = lines[line - 1]
    lines[line - 1] = text[: position - 1] + char + text[position:]
    return "".join(lines)


def faults(result, severity=None) -> list[tuple[int, int, str]]:
    return [(f.line, f.position, f.rule) for f in result.findings if severity is None or f.severity is severity]


def test_sixteen_patterns_with_their_line_types():
    assert sum(len(patterns_for(form)) for form in ("五绝", "七绝", "五律", "七律")) == 16
    assert pattern_named("仄起首句不入韵", "五绝").line_types == "aBbA"
    assert pattern_named("ze-rhymed", "七绝").line_types == "BAaB"
    assert pattern_named("平起不入韻", "五律").line_types == "bAaBbAaB"
    assert pattern_named("仄起首句入韵", "五律").line_types == "ABbAaBbA"  # line 5 always unrhymed
    assert pattern_named("平起首句入韵", "七律").lines[1] == "中仄平平仄仄平"
    with pytest.raises(ConfigError, match="仄起首句不入韵"):
        pattern_named("平起", "五绝")


def test_loose_fixes_only_2_4_6_and_the_end():
    pattern = Pattern(Form.QIJUE, Tone.ZE, False)  # b A a B
    strict = [pattern.required(3, j, ToneMode.STRICT) for j in range(7)]
    loose = [pattern.required(3, j, ToneMode.LOOSE) for j in range(7)]
    assert "".join(t.value if t else "中" for t in strict) == "中仄平平仄仄平"
    assert "".join(t.value if t else "中" for t in loose) == "中仄中平中仄平"


@pytest.mark.parametrize("poem", list(POEMS))
@pytest.mark.parametrize("tones", ["strict", "loose"])
def test_poetics_poems_pass(poem, tones):
    result = check_poem(poem, tones=tones)
    assert result.passed, [str(f) for f in result.violations]
    assert result.pattern.full_name == POEMS[poem]
    assert result.rhyme_group is not None and result.rhyme_group.tone is Tone.PING


def test_traditional_text_passes_the_same():
    result = check_poem("白日依山盡，黃河入海流。欲窮千里目，更上一層樓。")
    assert result.passed and result.pattern.full_name == POEMS[DENGGUAN]
    assert result.rhyme_group.full_name == "下平声十一尤"
    assert [line.tones for line in result.lines] == ["仄仄平平仄", "平平仄仄平", "仄平平仄仄", "○仄仄平平"]


def test_a_tone_against_a_fixed_position():
    poem = altered(DENGGUAN, 3, 2, "有")  # 欲有千里目: the 2nd character of a b line must be 平
    for tones in ("strict", "loose"):
        result = check_poem(poem, tones=tones)
        assert not result.passed and faults(result) == [(3, 2, "tone")]


def test_an_odd_position_fails_strict_only():
    poem = altered(DENGGUAN, 2, 3, "山")  # 黄河山海流: 平平平仄平
    assert faults(check_poem(poem, tones="strict")) == [(2, 3, "tone")]
    assert check_poem(poem, tones="loose").passed


def test_a_rhyme_outside_the_group():
    result = check_poem(altered(DENGGUAN, 4, 5, "山"))  # 山 is 十五删, 流 十一尤
    assert faults(result) == [(4, 5, "rhyme")] and result.rhyme_group.name == "十一尤"
    assert "上平声十五删" in result.violations[0].message


def test_a_ze_rhyme():
    result = check_poem(altered(DENGGUAN, 4, 5, "目"))
    assert faults(result) == [(4, 5, "rhyme")] and "仄" in result.violations[0].message


def test_an_unrhymed_line_ending_in_ping():
    result = check_poem(altered(DENGGUAN, 3, 5, "天"))  # 欲穷千里天
    assert faults(result) == [(3, 5, "line-end")]


def test_gu_ping_warns_unless_strict():
    poem = altered(DENGGUAN, 2, 1, "绿")  # 绿河入海流: 仄平仄仄平
    loose = check_poem(poem, tones="loose")
    assert loose.passed and faults(loose, Severity.WARNING) == [(2, 2, "孤平")]
    assert not check_poem(poem, tones="loose", strict=True).passed
    assert faults(check_poem(poem, tones="strict"), Severity.VIOLATION) == [(2, 1, "tone")]


def test_three_ping_at_the_end_warns_unless_strict():
    poem = altered(DENGGUAN, 4, 3, "千")  # 更上千层楼: 三平尾
    loose = check_poem(poem, tones="loose")
    assert loose.passed and faults(loose) == [(4, 3, "三平尾")]
    assert not check_poem(poem, tones="loose", strict=True).passed
    assert faults(check_poem(poem, tones="strict"), Severity.VIOLATION) == [(4, 3, "tone")]


def test_neighbouring_rhyme_warns_unless_strict():
    poem = "寥落古行宫，宫花寂寞红。白头宫女在，闲坐说玄宗。"  # 宗 is 二冬, 宫 红 一东
    assert faults(check_poem(poem), Severity.WARNING) == [(4, 5, "邻韵")]
    strict = check_poem(poem, strict=True)
    assert not strict.passed and [(f.line, f.position) for f in strict.violations] == [(4, 5)]


def test_a_lushi_altered_in_its_second_half():
    poem = "国破山河在，城春草木深。感时花溅泪，恨别鸟惊心。烽火连三月，家书抵万金。白头搔更短，浑欲不胜簪。"
    broken = poem.replace("家书抵万金", "家书抵万千")  # 千 is 一先, the poem rhymes in 十二侵
    assert faults(check_poem(broken)) == [(6, 5, "rhyme")]


def test_a_given_pattern_is_checked_as_given():
    result = check_poem(DENGGUAN, pattern="平起首句入韵")
    assert not result.passed and result.pattern.name == "平起首句入韵"
    assert check_poem(DENGGUAN, pattern="仄起首句不入韵").passed


def test_unknown_tones_are_listed_not_counted():
    poem = altered(DENGGUAN, 1, 1, "迺")  # no source gives 迺 a tone
    result = check_poem(poem)
    assert result.passed and result.unknown == ("迺",)


def test_not_a_regular_form():
    with pytest.raises(ConfigError, match="not a regular form .3 lines"):
        check_poem("白日依山尽，黄河入海流。欲穷千里目。")


def test_prepare_text_reads_breaks_spaces_and_half_width_marks():
    expected = DENGGUAN
    assert prepare_text("白日依山尽\n黄河入海流\n欲穷千里目\n更上一层楼") == expected
    assert prepare_text("白日依山尽 黄河入海流 欲穷千里目 更上一层楼") == expected
    assert prepare_text("白日依山尽,黄河入海流.欲穷千里目,更上一层楼.") == expected
    with pytest.raises(ConfigError, match="missing or unreadable"):
        prepare_text("白日依□尽")


def test_split_poems_reads_blocks_and_json_lines():
    assert split_poems("a\nb\n\n\nc\n") == ["a\nb", "c"]
    assert split_poems('{"poem": "甲"}\n{"poem": "乙"}\n') == ["甲", "乙"]


def test_pattern_names_are_the_four():
    assert PATTERN_NAMES == ("仄起首句不入韵", "仄起首句入韵", "平起首句不入韵", "平起首句入韵")


def test_a_character_opencc_keeps_in_context_is_read_as_the_decoder_reads_it():
    # OpenCC keeps 台 as it is in 清台; the tables know the terrace as 臺 (上平十灰), which is how the decoder's
    # rhyme constraint counted it when it wrote this poem (found by bench/constrained_generation.py).
    poem = "雨歇东风玉，春来感细裁。宴难更那落，萧散下清台。"
    result = check_poem(poem, strict=True)
    assert result.passed and result.unknown == ()
    assert result.rhyme_group.head == "灰" and result.rhymes == ("裁", "台")
