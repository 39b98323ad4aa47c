from kanji_lab.data import radicals
from kanji_lab.data.charsets import etl9g_classes
from kanji_lab.data.radicals import Node, parse_svg

SVG = """<svg><g id="kvg:StrokePaths_0660e">
<g id="kvg:0660e" kvg:element="明">
 <g id="kvg:0660e-g1" kvg:element="日" kvg:position="left"><path kvg:type="㇑"/></g>
 <g id="kvg:0660e-g2" kvg:element="月" kvg:position="right"><path kvg:type="㇒"/></g>
</g></g><g id="kvg:StrokeNumbers_0660e"><text>1</text></g></svg>"""


def test_parse_svg_left_right():
    tree = parse_svg(SVG)
    assert tree.structure == "⿰"
    assert [c.element for c in tree.children] == ["日", "月"]
    assert all(c.is_leaf() for c in tree.children)


def test_ming_is_sun_left_moon_right():
    tree = radicals.decompose("明")
    assert tree.element == "明" and tree.structure == "⿰"
    assert [c.element for c in tree.children] == ["日", "月"]
    assert radicals.components("明") == ("日", "月")
    assert radicals.sequence("明") == ("日", "月")


def test_kuni_is_an_enclosure_with_its_two_parts_joined():
    tree = radicals.decompose("国")
    assert tree.structure == "⿴"
    assert [c.element for c in tree.children] == ["囗", "玉"]  # kvg:part 1 and 2 of 囗 merged
    assert {"囗", "玉", "王"} <= set(radicals.components("国"))


def test_other_structures():
    assert radicals.decompose("座").structure == "⿸"  # tare
    assert radicals.decompose("道").structure == "⿺"  # nyo
    assert radicals.decompose("森").structure == "⿱"


def test_atomic_characters_and_kana_are_their_own_leaf():
    for char in "一日あア":
        assert radicals.decompose(char) == Node(char)
        assert radicals.components(char) == (char,)
    assert radicals.decompose("\u2603") == Node("\u2603")  # no KanjiVG file at all


def test_unnamed_groups_are_named_by_their_strokes():
    assert radicals.components("衣")[0] == "亠"
    assert radicals.components("衣")[1].startswith(radicals.STROKES)


def test_tree_round_trips_through_json():
    tree = radicals.decompose("議")
    assert Node.from_json(tree.to_json()) == tree


def test_coverage_of_etl9g():
    report = radicals.coverage(etl9g_classes())
    assert report["characters"] == 3036
    assert report["decomposed"] + report["atomic"] == 3036
    assert report["decomposed"] > 2800
    assert report["distinct_components"] > 500
    assert all(len(group) > 1 for group in report["collisions"])


def test_radical_cache_follows_the_cache_dir_setting(tmp_path, monkeypatch):
    from kanji_lab.data.datamodule import CharacterDataModule

    monkeypatch.setattr(radicals, "_cache_dir", None)
    monkeypatch.setenv("KANJI_LAB_CACHE", str(tmp_path / "env"))
    assert radicals._cache_file().parent == tmp_path / "env"
    CharacterDataModule({"source": "tiny", "classes": "ab", "cache_dir": str(tmp_path / "cfg")})
    assert radicals._cache_file().parent == tmp_path / "cfg"
    assert radicals.kanjivg_version() in radicals._cache_file().name
