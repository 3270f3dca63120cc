import pytest

from tangrnn_core.data.forms import REGULAR_FORMS, Form, classify, split_lines, split_lines_with_marks
from tangrnn_core.errors import ConfigError

JING_YE_SI = "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
DENG_GUAN_QUE_LOU = "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。"
CHUN_WANG = "国破山河在，城春草木深。感时花溅泪，恨别鸟惊心。烽火连三月，家书抵万金。白头搔更短，浑欲不胜簪。"
QING_MING = "清明时节雨纷纷，路上行人欲断魂。借问酒家何处有？牧童遥指杏花村。"
HUANG_HE_LOU = (
    "昔人已乘黄鹤去，此地空余黄鹤楼。黄鹤一去不复返，白云千载空悠悠。"
    "晴川历历汉阳树，芳草萋萋鹦鹉洲。日暮乡关何处是？烟波江上使人愁。"
)


def test_form_members_and_shape():
    assert [f.value for f in REGULAR_FORMS] == ["五绝", "七绝", "五律", "七律"]
    assert (Form.WUJUE.chars, Form.WUJUE.lines) == (5, 4)
    assert (Form.QIJUE.chars, Form.QIJUE.lines) == (7, 4)
    assert (Form.WULV.chars, Form.WULV.lines) == (5, 8)
    assert (Form.QILV.chars, Form.QILV.lines) == (7, 8)
    assert Form.OTHER.chars is None and Form.OTHER.lines is None
    assert Form.QILV == "七律" and str(Form.OTHER) == "other"


@pytest.mark.parametrize(
    "name,form",
    [
        ("五绝", Form.WUJUE),
        ("五絕", Form.WUJUE),
        ("wujue", Form.WUJUE),
        ("WuJue", Form.WUJUE),
        ("七绝", Form.QIJUE),
        ("七絕", Form.QIJUE),
        ("QIJUE", Form.QIJUE),
        ("五律", Form.WULV),
        ("wulv", Form.WULV),
        ("七律", Form.QILV),
        ("Qilv", Form.QILV),
        ("other", Form.OTHER),
        ("OTHER", Form.OTHER),
        (" qilv ", Form.QILV),
    ],
)
def test_parse_aliases(name, form):
    assert Form.parse(name) is form


def test_parse_unknown_lists_choices():
    with pytest.raises(ConfigError) as info:
        Form.parse("sonnet")
    msg = str(info.value)
    assert "\n" not in msg and "sonnet" in msg
    for choice in ("wujue", "qijue", "wulv", "qilv", "other"):
        assert choice in msg


def test_split_lines_on_every_line_end_mark():
    assert split_lines(JING_YE_SI) == ["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡"]
    # ？ ends a line just as 。 does; so do ！ and ；
    assert split_lines(QING_MING)[2:] == ["借问酒家何处有", "牧童遥指杏花村"]
    assert split_lines("噫吁嚱！危乎高哉；蜀道难。") == ["噫吁嚱", "危乎高哉", "蜀道难"]
    assert split_lines_with_marks(QING_MING)[2] == "借问酒家何处有？"
    assert "".join(split_lines_with_marks(HUANG_HE_LOU)) == HUANG_HE_LOU
    assert split_lines("") == []
    assert split_lines("未完之句") == ["未完之句"]


@pytest.mark.parametrize(
    "text,form",
    [
        (JING_YE_SI, Form.WUJUE),
        (DENG_GUAN_QUE_LOU, Form.WUJUE),
        ("朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。", Form.QIJUE),
        (QING_MING, Form.QIJUE),
        (CHUN_WANG, Form.WULV),
        (HUANG_HE_LOU, Form.QILV),
        (
            "锦瑟无端五十弦，一弦一柱思华年。庄生晓梦迷蝴蝶，望帝春心托杜鹃。"
            "沧海月明珠有泪，蓝田日暖玉生烟。此情可待成追忆，只是当时已惘然。",
            Form.QILV,
        ),
    ],
)
def test_classify_famous_poems(text, form):
    assert classify(text) is form


@pytest.mark.parametrize(
    "text",
    [
        "",
        "床前明月光，疑是地上霜。举头望明月，低头思故乡。清风徐徐来，水波不兴起。",  # 6 lines
        "床前明月光，疑是地上霜。举头望明月，低头思故乡乡。",  # a 6-character line
        "床前明月光，疑是地上霜。举头望明月，低头思故乡，",  # ends mid-couplet
        "床前明月光，疑是地上霜。举头望明月，低头思故乡",  # no end mark
        "床前明、月光，疑是地上霜。举头望明月，低头思故。",  # 、 inside a line
        "君不见黄河之水天上来，奔流到海不复回。君不见高堂明镜悲白发，朝如青丝暮成雪。",  # 杂言
    ],
)
def test_classify_other(text):
    assert classify(text) is Form.OTHER
