"""Pen-trace files (Tomoe, Tegaki) and the ``strokes`` source built from them."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from kanji_lab.data.strokes.files import StrokeFileError, read_stroke_file
from kanji_lab.errors import DataSourceError
from kanji_lab.evaluate import evaluate
from kanji_lab.train import train
from tests.conftest import TINY_CLASSES, compose_app, compose_train, tiny_overrides

REALDEV = Path(__file__).resolve().parents[2] / "shared" / "realdev"
TOMOE = "十\n:2\n2 (10 50) (90 50) \n2 (50 5) (50 95) \n\n旧「ね」\n:1\n2 (1 1) (2 2)\n\n人\n:2\n2 (50 10) (10 90)\n3 (50 10) (70 50) (90 90)\n"  # noqa: E501
TEGAKI = """<?xml version="1.0" encoding="UTF-8"?>
<character-collection>
<set name="ぁ">
</set>
<set name="十">
  <character>
    <utf8>十</utf8>
    <width>1000</width><height>1000</height>
    <strokes>
      <stroke><point x="100" y="500" timestamp="0"/><point x="900" y="500" timestamp="9"/></stroke>
      <stroke><point x="500" y="50"/><point x="500" y="950"/></stroke>
    </strokes>
  </character>
  <character>
    <strokes><stroke><point x="1" y="2"/><point x="3" y="4"/></stroke></strokes>
  </character>
</set>
</character-collection>
"""


def test_tomoe_blocks_in_order_and_odd_labels_skipped(tmp_path):
    path = tmp_path / "a.tdic"
    path.write_text(TOMOE, encoding="utf-8")
    traces = read_stroke_file(path)
    assert [t.char for t in traces] == ["十", "人"]
    assert [len(t.strokes) for t in traces] == [2, 2]
    np.testing.assert_array_equal(traces[1].strokes[1], [[50, 10], [70, 50], [90, 90]])


def test_tegaki_collection_gzipped_and_single_character(tmp_path):
    gz = tmp_path / "w.charcol.gz"
    gz.write_bytes(gzip.compress(TEGAKI.encode()))
    traces = read_stroke_file(gz)
    assert [t.char for t in traces] == ["十", "十"]  # the second takes its set's name
    np.testing.assert_array_equal(traces[0].strokes[0], [[100, 500], [900, 500]])
    single = tmp_path / "one.xml"
    start, end = TEGAKI.index("<character>"), TEGAKI.index("</character>") + 12
    single.write_text(TEGAKI[start:end], encoding="utf-8")
    assert [t.char for t in read_stroke_file(single)] == ["十"]


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("bad.tdic", "十\n:3\n2 (1 1) (2 2)\n", r"bad.tdic:2: 十: 3 strokes announced, 1 stroke"),
        ("bad.tdic", "十\n:1\n3 (1 1) (2 2)\n", r"bad.tdic:3: 十: a stroke line is"),
        ("bad.tdic", "十\n2 (1 1) (2 2)\n", r"bad.tdic:2: expected ':<number of strokes>'"),
        ("bad.charcol", "<character-collection>\n<set name='a'>\n<oops>", r"bad.charcol:3: not"),
        ("bad.xml", "<character><strokes/></character>", r"bad.xml: .*without a one-char"),
        ("bad.txt", "x", r"not a stroke file"),
    ],
)
def test_malformed_files_are_named_with_their_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StrokeFileError, match=message):
        read_stroke_file(path)


def test_shipped_development_set_parses():
    if not REALDEV.is_dir() and not os.environ.get("CI"):
        pytest.skip(f"no development set at {REALDEV} (shared/ beside the checkout)")
    traces = read_stroke_file(REALDEV / "tomoe" / "all.tdic")
    chars = {t.char for t in traces}
    assert len(traces) > 3000 and {"あ", "十", "亜"} <= chars
    hiragana = read_stroke_file(REALDEV / "tegaki" / "hiragana-writer1.charcol.gz")
    assert len(hiragana) > 50 and all(len(t.char) == 1 for t in hiragana)


def test_strokes_source_bad_roots(tmp_path):
    def build(root):
        cfg = compose_app("evaluate", ["run_dir=x", "data=strokes", f"data.root={root}"],
                          tmp_path / "e", tmp_path / "cache")  # fmt: skip
        from kanji_lab.data.sources import build_cache

        return build_cache(cfg.data, progress=False)

    with pytest.raises(DataSourceError, match="needs data.root"):
        build(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataSourceError, match="no stroke files"):
        build(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.tdic").write_text("十\n:2\n", encoding="utf-8")
    with pytest.raises(DataSourceError, match=r"x.tdic:2"):
        build(tmp_path / "bad")


def test_evaluate_a_run_on_a_stroke_folder(tmp_path):
    run = tmp_path / "run"
    train(compose_train([*tiny_overrides(), "debug=fdr"], run, tmp_path / "cache"))
    folder = tmp_path / "traces"
    (folder / "writer2").mkdir(parents=True)
    one = "".join(f"{c}\n:1\n2 (10 {10 * k}) (90 {10 * k})\n\n" for k, c in enumerate(TINY_CLASSES))
    (folder / "a.tdic").write_text(one + "愛\n:1\n2 (1 1) (9 9)\n", encoding="utf-8")
    (folder / "writer2" / "b.tdic").write_text(one, encoding="utf-8")
    overrides = [f"run_dir={run}", "data=strokes", f"data.root={folder}"]
    metrics = evaluate(compose_app("evaluate", overrides, tmp_path / "eval", tmp_path / "cache"))
    assert metrics["split"] == "all"
    assert metrics["scored"] == 2 * len(TINY_CLASSES)
    assert metrics["out_of_vocabulary"]["characters"] == {"愛": 1}
    assert set(metrics["per_source"]) == {"a.tdic", "writer2/b.tdic"}
