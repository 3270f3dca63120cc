import dataclasses
import json
import lzma
import time
from collections import Counter
from pathlib import Path

import pytest

from tangrnn_core.data.normalize import (
    LINE_END_MARKS,
    POEM_END_MARKS,
    NormalizedPoem,
    normalize_poem,
    to_script,
)
from tangrnn_core.errors import ConfigError

DENG = ["白日依山盡，黃河入海流。", "欲窮千里目，更上一層樓。"]
DENG_TEXT = "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。"
DENG_STRAINS = ["仄仄平平仄，平平仄仄平。", "仄平平仄仄，仄仄仄平平。"]
DENG_MARKS = "".join(DENG_STRAINS)
CORPUS = Path(__file__).resolve().parents[2] / "tangrnn_core" / "data" / "corpus" / "tang.jsonl.xz"


def test_marks_constants():
    for mark in "，。？！":
        assert mark in LINE_END_MARKS
    assert set(POEM_END_MARKS) <= set(LINE_END_MARKS)
    assert "，" not in POEM_END_MARKS and "、" not in LINE_END_MARKS


def test_clean_poem_with_strains():
    poem = normalize_poem(DENG, DENG_STRAINS)
    assert poem == NormalizedPoem(DENG_TEXT, DENG_MARKS)
    assert normalize_poem(DENG) == NormalizedPoem(DENG_TEXT, None)


def test_variant_notes_removed_and_strains_stay_aligned():
    # The strains mark every character of a note, brackets included, with ？ (unknown).
    paragraphs = [
        "白日依山盡（一作「落」），黃河入海（一作「海上」）流。",
        "欲窮千里目[一]，更上一層樓。（見《全唐詩》卷二五三）",
    ]
    strains = [
        "仄仄平平仄" + "？" * 7 + "，平平仄仄" + "？" * 8 + "平。",
        "仄平平仄仄？？？，仄仄仄平平。" + "？" * 12,
    ]
    assert [len(p) for p in paragraphs] == [len(s) for s in strains]
    poem = normalize_poem(paragraphs, strains)
    assert poem.text == DENG_TEXT
    assert poem.marks == DENG_MARKS


def test_question_mark_line_end_kept_in_text_and_marks():
    # strains write ，/。 where the poem has ？; marks keep the poem's own punctuation
    poem = normalize_poem(["借問酒家何處有?牧童遙指杏花村."], ["仄仄仄平平仄仄，仄平平仄仄平平。"])
    assert poem.text == "借問酒家何處有？牧童遙指杏花村。"
    assert poem.marks == "仄仄仄平平仄仄？仄平平仄仄平平。"


def test_marks_take_the_poems_own_punctuation():
    poem = normalize_poem(["白日依山盡，黃河入海流。"], ["仄仄平平仄，平平仄仄平，"])
    assert poem.marks == "仄仄平平仄，平平仄仄平。"


def test_leading_punctuation_dropped():
    assert normalize_poem(["。白日依山盡，黃河入海流。"]).text == "白日依山盡，黃河入海流。"


def test_either_and_unknown_strains_become_either():
    poem = normalize_poem(["看花思故人。"], ["通？平仄平。"])
    assert poem.marks == "○○平仄平。"


def test_misaligned_strains_give_no_marks():
    assert normalize_poem(DENG, ["仄仄平平仄，平平仄仄平。", "仄平平仄仄，仄仄仄平平"]).marks is None
    assert normalize_poem(DENG, DENG_STRAINS[:1]).marks is None
    # same length but shifted: a tone mark faces punctuation
    shifted = ["仄仄平平仄平，平平仄仄。", "仄平平仄仄，仄仄仄平平。"]
    poem = normalize_poem(DENG, shifted)
    assert poem.text == DENG_TEXT and poem.marks is None


def test_half_width_and_variant_punctuation():
    assert normalize_poem(["白日依山盡,黃河入海流.", "欲窮千里目;更上一層樓!"]).text == (
        "白日依山盡，黃河入海流。欲窮千里目；更上一層樓！"
    )
    assert normalize_poem(["白日依山盡﹐黃河入海流．"]).text == "白日依山盡，黃河入海流。"
    assert normalize_poem(["問君何能爾: 心遠地自偏?"]).text == "問君何能爾：心遠地自偏？"


def test_quotes_titles_spaces_dropped_with_marks():
    paragraphs = ["童子解吟《長恨曲》， 胡兒能唱「琵琶篇」。"]
    strains = ["平仄仄平？平仄仄？，？平平仄仄？平平平？。"]
    poem = normalize_poem(paragraphs, strains)
    assert poem.text == "童子解吟長恨曲，胡兒能唱琵琶篇。"
    assert poem.marks == "平仄仄平平仄仄，平平仄仄平平平。"


def test_restored_text_kept_footnotes_removed():
    assert normalize_poem(["[爽]節在重九，物華新雨餘[一]。"]).text == "爽節在重九，物華新雨餘。"
    assert normalize_poem(["九［削棱還峻］，人躋刃不平[一○]。"]).text == "九削棱還峻，人躋刃不平。"


def test_nested_note_spanning_paragraphs_and_punctuation_run():
    paragraphs = [
        "毫（鶴）立蛇形勢未休，五天文字鬼神愁。",
        "支那弟子無言語，穿耳胡僧笑點頭。",
        "（〖1〗這首詩雖不見《全唐詩》（一作「某」）。",
        "石刻資料錄附於後。）。",
    ]
    assert normalize_poem(paragraphs).text == "毫立蛇形勢未休，五天文字鬼神愁。支那弟子無言語，穿耳胡僧笑點頭。"


@pytest.mark.parametrize(
    "paragraphs",
    [
        ["綬吐芽猶嫩，冰□已鏤津。"],  # missing character
        ["囗囗囗囗囗，但將詞賦奉恩輝。"],  # 囗 stands for missing characters in this corpus
        ["剪翅小鷹斜，●●啼深竹。"],  # illegible
        ["簪玉步河堤，妖韶援綠{𥫗/戢}。"],  # a character Unicode lacks, spelled out
        ["素練風霜起，\ue829身思狡兔。"],  # private use
        ["君不見賈誼寰中推逸才，⿰亻丸香坐處館常開。"],  # ideographic description
        ["Ｂ亂後碧井廢，時清瑤殿深。"],  # OCR debris
        ["白日依山盡（一作「落」，黃河入海流。"],  # unbalanced
        ["白日依山盡），黃河入海流。"],
        ["白日依山盡，黃河[入海流。"],
        ["白日依山盡（一作〖落），黃河入海流〗。"],  # crossed brackets
        [],
        [""],
        ["（《涉道詩》二十八首〖伯三八六六〗）。"],  # only a note
        ["白日依山盡，黃河入海流"],  # no line-end mark at the end
    ],
)
def test_damaged_poems_dropped(paragraphs):
    assert normalize_poem(paragraphs) is None


def test_normalized_poem_checks_lengths():
    with pytest.raises(ValueError):
        NormalizedPoem("白日依山盡。", "仄仄平平。")
    with pytest.raises(dataclasses.FrozenInstanceError):
        NormalizedPoem("白。", None).text = "x"  # type: ignore[misc]


def test_to_script():
    texts = ["國破山河在，城春草木深。", "白日依山盡，黃河入海流。", "", "感時花濺淚，恨別鳥驚心。"]
    simplified = to_script(texts, "simplified")
    assert simplified == ["国破山河在，城春草木深。", "白日依山尽，黄河入海流。", "", "感时花溅泪，恨别鸟惊心。"]
    assert [len(t) for t in simplified] == [len(t) for t in texts]
    assert to_script(texts, "traditional") == texts
    assert to_script([], "simplified") == []


def test_to_script_many_texts_in_order():
    texts = [f"國破山河在{'，城春草木深' * (i % 3)}。" for i in range(2500)]
    out = to_script(texts, "simplified")
    assert out == [t.replace("國", "国") for t in texts]


def test_to_script_unknown_script():
    with pytest.raises(ConfigError) as info:
        to_script(["國"], "klingon")  # type: ignore[arg-type]
    msg = str(info.value)
    assert "\n" not in msg and "simplified" in msg and "traditional" in msg


@pytest.mark.skipif(not CORPUS.exists(), reason="bundled corpus tang.jsonl.xz not built")
def test_real_corpus():
    from tangrnn_core.data.forms import Form, classify

    with lzma.open(CORPUS, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    start = time.perf_counter()
    poems = [normalize_poem(r["paragraphs"], r.get("strains")) for r in records]
    elapsed = time.perf_counter() - start
    kept = [p for p in poems if p is not None]
    assert elapsed < 15  # about 1 s on a laptop core
    assert len(kept) >= 0.97 * len(records)
    forms = Counter(classify(p.text) for p in kept)
    regular = sum(n for f, n in forms.items() if f is not Form.OTHER)
    if len(records) > 50_000:  # the full Tang corpus: POETICS.md counts 37,172 regular poems
        assert 35_000 <= regular <= 41_000
    simplified = to_script([p.text for p in kept], "simplified")
    assert all(len(a) == len(b) for a, b in zip(kept, simplified) for a, b in [(a.text, b)])
