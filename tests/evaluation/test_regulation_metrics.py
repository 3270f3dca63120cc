"""ToneCompliance and RhymeCompliance on poems whose tones and rhymes are known."""

from __future__ import annotations

import math

import pytest

from tangrnn_core.errors import ConfigError
from tangrnn_core.evaluation.regulation import RhymeCompliance, ToneCompliance

# 登鹳雀楼 and 早发白帝城 follow their patterns and rhyme in one 平声 group.
REGULATED = [
    "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。",
    "朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。",
]
# 静夜思 rhymes (光 霜 乡, all 阳) but breaks the pattern's tones.
TONES_BROKEN = "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
# 登鹳雀楼 with 去 (仄) for 流: the tones of the pattern hold, the rhyme does not.
RHYME_BROKEN = "白日依山尽，黄河入海去。欲穷千里目，更上一层楼。"
NOT_REGULAR = "床前明月光，疑是地上霜。"


def _measure(metric, poems):
    metric.update(poems)
    return metric.compute().item()


def test_regulated_poems_pass_both():
    assert _measure(ToneCompliance(), REGULATED) == 1.0
    assert _measure(RhymeCompliance(), REGULATED) == 1.0


def test_tones_and_rhyme_are_judged_apart():
    poems = [*REGULATED, TONES_BROKEN, RHYME_BROKEN]
    assert _measure(ToneCompliance(), poems) == pytest.approx(3 / 4)
    assert _measure(RhymeCompliance(), poems) == pytest.approx(3 / 4)


def test_only_regular_poems_are_judged():
    assert _measure(ToneCompliance(), [REGULATED[0], NOT_REGULAR]) == 1.0
    # Nothing in a regular form: nothing to judge, which is not 0%.
    assert math.isnan(_measure(RhymeCompliance(), [NOT_REGULAR]))


def test_loose_tones_forgive_the_odd_positions():
    # 绿 (仄, 入声) for 黄 opens a B line (平平仄仄平) with 仄: wrong at position 1 for strict tones, free for
    # loose ones (一三五不论), which leave only a 孤平 warning.
    odd = "白日依山尽，绿河入海流。欲穷千里目，更上一层楼。"
    assert _measure(ToneCompliance("strict"), [odd]) == 0.0
    assert _measure(ToneCompliance("loose"), [odd]) == 1.0
    with pytest.raises(ConfigError, match="strict or loose"):
        ToneCompliance("lenient")


def test_counts_sum_across_processes():
    rank0, rank1 = ToneCompliance(), ToneCompliance()
    rank0.update(REGULATED)
    rank1.update([TONES_BROKEN, NOT_REGULAR])
    rank0.merge_state(rank1)
    assert rank0.compute().item() == pytest.approx(2 / 3)
