"""Named class sets: counts, no duplicates, JIS order, and the default equal to the combined ETL
vocabulary on the classes ETL has."""

import numpy as np
import pytest

from kanji_lab.data import charsets
from kanji_lab.data.etl import labels
from tests.etl_fixtures import ETL6_CODES


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("etl9g", 3036),
        ("kana", 170),
        ("jis_level1", 2965),
        ("jis0208", 6878),
        ("combined", 3210),
        ("joyo", 2136),
    ],
)
def test_named_sets_have_their_counts_and_no_duplicates(name, count):
    chars = charsets.resolve_classes(name)
    assert len(chars) == count == len(set(chars))


def test_jis_sets_keep_jis_order():
    codes = [c.encode("euc_jp") for c in charsets.resolve_classes("jis0208")]
    assert codes == sorted(codes)
    assert charsets.resolve_classes("jis0208")[-6:] == list("堯槇遙瑤凜熙")
    assert "\u3000" not in charsets.resolve_classes("jis0208")


def test_joyo_is_the_2010_list_in_jis_order():
    joyo = charsets.resolve_classes("joyo")
    inside = [c for c in joyo if charsets.script_of(c) != "kanji other"]
    assert joyo[-2:] == ["塡", "頰"] and len(inside) == 2134
    assert [c.encode("euc_jp") for c in inside] == sorted(c.encode("euc_jp") for c in inside)
    # the 2010 additions and removals, and grade-1 kanji
    assert set("俺岡鬱串一右") <= set(joyo) and not set("勺錘銑脹匁") & set(joyo)
    assert sum(charsets.script_of(c) == "kanji level 2" for c in joyo) == 30


def test_named_sets_join_with_plus_in_order():
    both = charsets.resolve_classes("jis0208+joyo")
    assert both[:6878] == charsets.resolve_classes("jis0208") and both[6878:] == ["塡", "頰"]
    assert charsets.resolve_classes("kana+hiragana") == charsets.resolve_classes("kana")
    assert charsets.resolve_classes("+-") == ["+", "-"]  # characters, not names


@pytest.mark.parametrize("spec", ["jis0208+jouyou", "kana+", "etl8g+kana"])
def test_a_join_naming_no_set_says_which(spec):
    which = r"data\.classes=.*: (jouyou|an empty name|etl8g.*package)"
    with pytest.raises(charsets.ClassSetError, match=which):
        charsets.resolve_classes(spec)


def test_look_alike_confusions_count_each_direction():
    labels = list("カ力ニ亜")  # ニ's twin 二 is not among them: no entry
    targets = np.array([0, 0, 0, 1, 1, 2, 3])
    predicted = np.array([1, 0, 1, 0, 1, 2, 3])
    out = charsets.look_alike_confusions(targets, predicted, labels)
    assert out == {"カ/力": {"n_a": 3, "n_b": 2, "a_as_b": 2, "b_as_a": 1}}
    assert all(len(pair) == 2 and len(set(pair)) == 2 for pair in charsets.LOOK_ALIKES)


def test_kana_holds_every_kana_form():
    kana = set(charsets.resolve_classes("kana"))
    assert set("ぁぃっゃゎゐゑをんァィッャヮヰヱヲンヴヵヶー") <= kana
    assert set("ガパヂヅ") <= kana and "ア" in kana and "あ" in kana


def test_the_default_set_holds_what_every_etl_part_labels():
    """ETL9G's classes and every class the M-type readers give (ETL6 katakana, digits, Latin
    capitals and symbols; ETL7 hiragana and ゛ ゜), labelled by the ETL label rules themselves."""
    combined = set(charsets.resolve_classes("combined"))
    assert set(charsets.etl9g_classes()) <= combined
    m_codes = np.arange(0x20, 0xE0)
    for script in (labels.KATAKANA, labels.HIRAGANA):
        points = labels.jis0201_codepoints(m_codes, script)
        chars = {chr(p) for p in points[points > 0x20] if not chr(p).islower()}
        assert chars <= combined, chars - combined
    six = labels.jis0201_codepoints(np.array(ETL6_CODES), labels.KATAKANA)
    assert {chr(p) for p in six} <= combined
    assert {"A", "0", "¥", "ヰ", "ー", "゛", "゜"} <= combined


def test_script_of_each_kind_of_class():
    expected = {
        "あ": "hiragana",
        "ヴ": "katakana",
        "ー": "katakana",
        "亜": "kanji level 1",
        "弌": "kanji level 2",
        "7": "digit",
        "Ｚ": "latin",
        "¥": "other",
    }
    assert {c: charsets.script_of(c) for c in expected} == expected


def test_small_kana_and_rarer_look_alikes_yield_to_their_twins():
    yielding = charsets.yielding_twins(charsets.resolve_classes("combined"))
    assert set("ぁっゃゎァッャヵヶ") <= yielding
    assert "ヘ" in yielding and "へ" not in yielding  # へ is the common one in text
    assert "ぺ" in yielding and "ペ" not in yielding
    assert not yielding & set("あつやアツカケ亜一")
    # a small kana whose full form the set lacks is the only reading of its shape
    assert charsets.yielding_twins(list("ぁっ")) == set()
