"""The metrics of generated poems on hand-made poems whose answers are known, and how they sync."""

from __future__ import annotations

import math

import pytest
import torch

from tangrnn_core.errors import ConfigError
from tangrnn_core.evaluation.metrics import (
    ContinuationBLEU,
    DistinctN,
    FormCompliance,
    Novelty,
    continuation,
    corpus_lines,
    ngrams,
)

WUJUE = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"
QIJUE = "朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。"
OTHER = "床前明月光，疑是地上霜。"  # two lines: no regular form
WULV = "空山新雨后，天气晚来秋。明月松间照，清泉石上流。竹喧归浣女，莲动下渔舟。随意春芳歇，王孙自可留。"


# -- FormCompliance ------------------------------------------------------------------------------------------


def test_form_compliance_counts_the_requested_form():
    metric = FormCompliance("五绝")
    metric.update([WUJUE, QIJUE, OTHER, WUJUE])
    assert metric.compute().item() == pytest.approx(2 / 4)


def test_form_compliance_without_a_form_accepts_any_regular_one():
    metric = FormCompliance()
    metric.update([WUJUE, QIJUE, OTHER, WULV])
    assert metric.compute().item() == pytest.approx(3 / 4)


def test_form_compliance_accepts_pinyin_and_refuses_other():
    metric = FormCompliance("qijue")
    metric.update([QIJUE])
    assert metric.compute().item() == 1.0
    with pytest.raises(ConfigError, match="other"):
        FormCompliance("other")


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_a_metric_that_saw_nothing_is_zero():
    assert FormCompliance().compute().item() == 0.0
    assert DistinctN(2).compute().item() == 0.0
    assert Novelty(set()).compute() == {"copied_lines": 0.0, "poems_with_copy": 0.0}


# -- DistinctN -----------------------------------------------------------------------------------------------


def test_distinct_counts_characters_and_in_line_bigrams_without_punctuation():
    poems = ["白日依山尽，白日依山尽。"]
    one, two = DistinctN(1), DistinctN(2)
    one.update(poems)
    two.update(poems)
    assert one.compute().item() == pytest.approx(5 / 10)
    assert two.compute().item() == pytest.approx(4 / 8)
    # 山水 and 水山 only: no bigram 水水 across the line break, none with a mark.
    assert ngrams("山水，水山。", 2) == ["山水", "水山"]


def test_distinct_is_one_when_nothing_repeats_and_spans_poems():
    metric = DistinctN(2)
    metric.update([WUJUE])
    assert metric.compute().item() == 1.0
    metric = DistinctN(2)
    metric.update([WUJUE, WUJUE])  # the second poem repeats every bigram of the first
    assert metric.compute().item() == pytest.approx(0.5)


def test_distinct_of_longer_ngrams_hashes_them():
    metric = DistinctN(4)
    metric.update(["白日依山尽，白日依山尽。"])  # 白日依山, 日依山尽 twice each
    assert metric.compute().item() == pytest.approx(2 / 4)
    with pytest.raises(ConfigError):
        DistinctN(0)


def _two_ranks() -> tuple[DistinctN, DistinctN]:
    """What two processes would hold: both saw 山 and 水, so distinct counts do not add up."""
    rank0, rank1 = DistinctN(1), DistinctN(1)
    rank0.update(["山水，山月。"])  # 山 水 月 of 4: 0.75 alone
    rank1.update(["山水，江月。"])  # 山 水 江 月 of 4: 1.0 alone
    return rank0, rank1


def test_distinct_merges_ngrams_not_counts():
    rank0, rank1 = _two_ranks()
    rank0.merge_state(rank1)
    # Union 山 水 月 江 over 8 characters; the mean of the two local values would say 0.875.
    assert rank0.compute().item() == pytest.approx(4 / 8)


def test_distinct_syncs_through_torchmetrics_gather():
    rank0, rank1 = _two_ranks()
    other = {1: torch.cat(rank1.ngrams), 0: rank1.total}  # rank 1's states, by dimension

    def all_gather(tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
        return [tensor, other[tensor.dim()]]

    # torchmetrics' own sync path, with the collective replaced by one that returns both ranks' states.
    synced = DistinctN(1, dist_sync_fn=all_gather, distributed_available_fn=lambda: True)
    synced.update(["山水，山月。"])
    assert synced.compute().item() == pytest.approx(4 / 8)
    # compute() restores the local states after syncing, so a further update starts from rank 0's own.
    assert int(synced.total) == 4


# -- Novelty -------------------------------------------------------------------------------------------------


def test_novelty_finds_verbatim_lines_of_the_training_corpus():
    training = corpus_lines([WUJUE, WULV])
    assert "白日依山尽" in training and "王孙自可留" in training
    metric = Novelty(training)
    metric.update(
        [
            "白日依山尽，春风入海流。欲穷千里目，更上一层楼。",  # 3 of 4 lines copied
            "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",  # none
        ]
    )
    result = metric.compute()
    assert result["copied_lines"].item() == pytest.approx(3 / 8)
    assert result["poems_with_copy"].item() == pytest.approx(1 / 2)


def test_novelty_ignores_short_lines():
    metric = Novelty({"白日", "白日依山尽"}, min_chars=5)
    metric.update(["白日，白日依山尽。"])  # the two-character line is not counted either way
    assert metric.compute()["copied_lines"].item() == 1.0
    metric = Novelty({"白日", "白日依山尽"}, min_chars=1)
    metric.update(["白日，黄河入海流。"])
    assert metric.compute()["copied_lines"].item() == pytest.approx(1 / 2)


def test_novelty_states_are_sums():
    rank0, rank1 = Novelty({"白日依山尽"}), Novelty({"白日依山尽"})
    rank0.update([WUJUE])
    rank1.update([QIJUE, QIJUE])
    rank0.merge_state(rank1)
    result = rank0.compute()
    assert result["copied_lines"].item() == pytest.approx(1 / 12)
    assert result["poems_with_copy"].item() == pytest.approx(1 / 3)


# -- ContinuationBLEU ----------------------------------------------------------------------------------------


def test_bleu_of_the_original_itself_is_one():
    metric = ContinuationBLEU()
    metric.update([WUJUE], [WUJUE])
    assert metric.compute().item() == pytest.approx(1.0)


def test_bleu2_of_a_known_continuation():
    metric = ContinuationBLEU()
    # Continuation 黄河入海去 against 黄河入海流: 4 of 5 characters, 3 of 4 bigrams, same length (no penalty).
    metric.update(["白日依山尽，黄河入海去。"], ["白日依山尽，黄河入海流。"])
    assert metric.compute().item() == pytest.approx(math.sqrt(4 / 5 * 3 / 4), abs=1e-4)


def test_bleu_ignores_the_given_first_line_and_the_punctuation():
    metric = ContinuationBLEU()
    metric.update(["白日依山尽，春风不度关！"], ["白日依山尽，黄河入海流。"])
    assert metric.compute().item() == 0.0
    assert continuation(WUJUE) == "黄河入海流欲穷千里目更上一层楼"


def test_bleu_is_corpus_level_and_needs_pairs():
    metric = ContinuationBLEU()
    metric.update(["白日依山尽，黄河入海去。"], ["白日依山尽，黄河入海流。"])
    metric.update([WUJUE], [WUJUE])
    # Counts of both pairs are pooled: 19 of 20 characters, 17 of 18 bigrams.
    assert metric.compute().item() == pytest.approx(math.sqrt(19 / 20 * 17 / 18), abs=1e-4)
    with pytest.raises(ValueError):
        metric.update([WUJUE], [])
