"""The built-in synthetic data source: determinism, labels, writer ids, caching and errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf

from kanji_lab.data import cache, sources, splits, synthetic
from kanji_lab.data.kanjivg import load_strokes, sample_path
from kanji_lab.data.synthetic import fonts
from kanji_lab.errors import DataSourceError

FONTS = [
    {"package": "pylopdf_fonts_cjk", "path": "NotoSansJP-Regular.otf"},
    {"package": "japanize_matplotlib", "path": "fonts/ipaexg.ttf"},
]
FEW = "亜一永あ"


def make_cfg(tmp_path: Path, **overrides: object) -> DictConfig:
    """A config shaped like conf/data/synthetic.yaml, small enough for a test."""
    cfg = {
        "source": "synthetic",
        "name": "synthetic",
        "cache_dir": str(tmp_path),
        "classes": FEW,
        "seed": 0,
        "workers": 1,
        "split": {"by": "writer", "val": 0.1, "test": 0.1, "seed": 0},
        "writers": {"pen": 2, "pencil": 1, "brush": 2, "cursive": 1, "font": 2},
        "fonts": FONTS,
    }
    cfg.update(overrides)
    return OmegaConf.create(cfg)


def build(cfg: DictConfig) -> cache.CharacterSet:
    return cache.open_cache(sources.build_cache(cfg, progress=False))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> cache.CharacterSet:
    return build(make_cfg(tmp_path_factory.mktemp("synthetic")))


def test_format_and_counts(built: cache.CharacterSet) -> None:
    assert built.images.shape == (8 * len(FEW), 64, 64)
    assert built.images.dtype == np.uint8
    assert built.characters == sorted(FEW)
    names = [f"synthetic/{f}" for f in ("pen", "pencil", "brush", "cursive", "font")]
    assert built.source_names == names
    per_family = np.bincount(np.asarray(built.sources), minlength=5)
    assert per_family.tolist() == [2 * 4, 1 * 4, 2 * 4, 1 * 4, 2 * 4]


def test_ink_bright_and_framed(built: cache.CharacterSet) -> None:
    images = np.asarray(built.images)
    border = np.concatenate(
        [images[:, :2].reshape(len(images), -1), images[:, -2:].reshape(len(images), -1)], axis=1
    )
    assert border.mean() < 20, "paper (border) must be dark: images are ink bright"
    for image, code in zip(images, np.asarray(built.codepoints), strict=True):
        ys, xs = np.nonzero(image > image.max() / 2)
        extent = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        assert 30 <= extent <= 64, f"ink box of {chr(code)} spans {extent} px"


def test_writer_ids_distinct(built: cache.CharacterSet) -> None:
    writers = np.asarray(built.writers)
    assert len(np.unique(writers)) == 8
    for writer in np.unique(writers):
        rows = writers == writer
        assert len(np.unique(np.asarray(built.sources)[rows])) == 1, "a writer has one family"
        assert sorted(np.asarray(built.codepoints)[rows].tolist()) == sorted(map(ord, FEW))


def test_deterministic_and_independent_of_workers(
    tmp_path: Path, built: cache.CharacterSet
) -> None:
    again = build(make_cfg(tmp_path / "a", workers=2))
    for name in ("images", "codepoints", "writers", "sources"):
        assert np.array_equal(np.asarray(getattr(built, name)), np.asarray(getattr(again, name)))


def test_seed_changes_images(tmp_path: Path, built: cache.CharacterSet) -> None:
    other = build(make_cfg(tmp_path, seed=1))
    assert not np.array_equal(np.asarray(built.images), np.asarray(other.images))


def _font_reference(char: str) -> np.ndarray:
    """``char`` from a font, framed like the samples: a plain, undistorted reference."""
    file = str(fonts.resolve_font(FONTS[1]["package"], FONTS[1]["path"]))
    glyph = fonts.glyph_image(file, char)
    assert glyph is not None
    glyph.thumbnail((52, 52))
    frame = np.zeros((64, 64), dtype=np.float32)
    w, h = glyph.size
    frame[(64 - h) // 2 : (64 - h) // 2 + h, (64 - w) // 2 : (64 - w) // 2 + w] = np.asarray(glyph)
    return frame


def _blurred(image: np.ndarray) -> np.ndarray:
    """Box-blur and normalise, so similarity measures shape rather than exact stroke position."""
    x = np.asarray(image, dtype=np.float32)
    for axis in (0, 1):
        x = sum(np.roll(x, s, axis=axis) for s in range(-3, 4))
    x = x - x.mean()
    return x / (np.linalg.norm(x) + 1e-9)


def test_labels_match_rendered_characters(built: cache.CharacterSet) -> None:
    """Each stroke-drawn sample looks most like the font rendering of its own label."""
    references = {c: _blurred(_font_reference(c)) for c in FEW}
    hand_drawn = np.asarray(built.sources) != built.source_names.index("synthetic/font")
    correct = 0
    total = 0
    for image, code in zip(
        np.asarray(built.images)[hand_drawn], np.asarray(built.codepoints)[hand_drawn], strict=True
    ):
        scores = {c: float(np.sum(_blurred(image) * ref)) for c, ref in references.items()}
        correct += max(scores, key=scores.get) == chr(code)
        total += 1
    assert correct / total >= 0.8, f"only {correct}/{total} samples match their label"


def test_single_class_builds_are_labelled(tmp_path: Path) -> None:
    one = build(make_cfg(tmp_path, classes="亜", writers={"pen": 1}))
    two = build(make_cfg(tmp_path, classes="一", writers={"pen": 1}))
    assert np.asarray(one.codepoints).tolist() == [ord("亜")]
    assert np.asarray(two.codepoints).tolist() == [ord("一")]
    assert not np.array_equal(np.asarray(one.images), np.asarray(two.images))
    assert (np.asarray(one.images) > 128).sum() > (np.asarray(two.images) > 128).sum()


def test_cache_reused_without_regenerating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_cfg(tmp_path, writers={"pen": 1, "font": 1})
    first = sources.build_cache(cfg, progress=False)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("regenerated a complete cache")

    monkeypatch.setattr(synthetic, "generate", fail)
    assert sources.build_cache(cfg, progress=False) == first
    assert (
        sources.build_cache(make_cfg(tmp_path, writers={"pen": 1, "font": 1}, workers=2), False)
        == first
    )


def test_config_change_rebuilds(tmp_path: Path) -> None:
    first = sources.build_cache(make_cfg(tmp_path, writers={"pen": 1}), progress=False)
    second = sources.build_cache(make_cfg(tmp_path, writers={"pen": 2}), progress=False)
    assert first != second
    assert len(cache.open_cache(second)) == 2 * len(FEW)
    assert cache.is_complete(first, {"stale": True}) is False


def test_characters_without_strokes_are_written_by_every_family_over_fonts(tmp_path: Path):
    """Classes KanjiVG has no strokes for (full-width letters, most symbols) are not left to the
    font writers alone: every writer draws them, in its own hand, over a font glyph."""
    missing = "Ａ"  # fullwidth A: KanjiVG has no strokes for it, fonts have a glyph
    assert load_strokes(missing) is None
    data = build(make_cfg(tmp_path, classes="亜" + missing, writers={"pen": 1, "brush": 1}))
    codes = np.asarray(data.codepoints)
    fam = np.asarray(data.sources)
    assert (codes == ord(missing)).sum() == 2
    assert {data.source_names[f] for f in fam[codes == ord(missing)]} == {
        "synthetic/pen",
        "synthetic/brush",
    }
    pen, brush = np.asarray(data.images)[codes == ord(missing)]
    assert not np.array_equal(pen, brush) and pen.max() > 128 and brush.max() > 128


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"classes": ""}, "empty class set"),
        (
            {"classes": "亜Ａ", "writers": {"pen": 1}, "fonts": []},
            "KanjiVG strokes need .*data.fonts",
        ),
        ({"writers": {"pen": 0}}, "at least one writer"),
        ({"seed": -1}, "non-negative"),
        ({"writers": {"marker": 1}}, "unknown writer families"),
        (
            {"writers": {"font": 1}, "fonts": [{"package": "pylopdf_fonts_cjk", "path": "No.otf"}]},
            "No.otf",
        ),
        (
            {"writers": {"font": 1}, "fonts": [{"package": "no_such_fonts", "path": "a.ttf"}]},
            "pip install no-such-fonts",
        ),
        ({"writers": {"font": 1}, "fonts": []}, "data.fonts"),
        ({"heldout_classes": {"train": 0.5}}, "takes val and test"),
        ({"heldout_classes": {"val": 0}}, r"in \(0, 1\]"),
    ],
)
def test_bad_inputs_raise_clear_errors(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(DataSourceError, match=message):
        sources.build_cache(make_cfg(tmp_path, **overrides), progress=False)


def test_no_font_glyph_and_no_strokes(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, classes="亜\U0010fffc", writers={"pen": 1, "font": 1})
    with pytest.raises(DataSourceError, match="neither KanjiVG stroke data nor a glyph"):
        sources.build_cache(cfg, progress=False)


def test_path_parser_handles_relative_and_smooth_commands() -> None:
    absolute = sample_path("M10,10 C20,10 30,20 30,30 S40,50 50,50 L60,60")
    relative = sample_path("m10,10 c10,0 20,10 20,20 s10,20 20,20 l10,10")
    assert np.allclose(absolute, relative, atol=1e-4)
    assert np.allclose(absolute[0], (10, 10)) and np.allclose(absolute[-1], (60, 60))


def test_named_class_set(tmp_path: Path) -> None:
    data = build(make_cfg(tmp_path, classes="hiragana", writers={"cursive": 1}))
    assert len(data) == 71
    assert "あ" in data.characters and "ん" in data.characters


def test_set_names_are_not_read_as_characters():
    from kanji_lab.data.charsets import resolve_classes

    with pytest.raises(ValueError, match="etl8g: ETL8G's 881 kanji"):
        resolve_classes("etl8g")
    with pytest.raises(ValueError, match="not a named class set"):
        resolve_classes("katakana_all")
    assert resolve_classes("亜a") == ["亜", "a"]


@pytest.mark.parametrize("family", ["touch", "print", "form"])
def test_new_families_render_deterministically_under_their_name(tmp_path, family) -> None:
    cfg = make_cfg(tmp_path, writers={family: 2})
    first = build(cfg)
    assert first.source_names == [f"synthetic/{family}"]
    assert len(first.images) == 2 * len(FEW) and np.asarray(first.images).max() == 255
    again = synthetic.generate(cfg, list(FEW), synthetic._writer_counts(cfg), progress=False)
    assert np.array_equal(again.images, np.asarray(first.images))
    other = synthetic.generate(
        make_cfg(tmp_path, writers={family: 2}, seed=1), list(FEW), {**again.info["writers"]}, False
    )
    assert not np.array_equal(other.images, again.images)


def test_form_writers_write_in_cells_with_their_neighbours(tmp_path) -> None:
    """A form writer's characters are cut from a sheet with their neighbours; after the
    normalisation each image still holds its character, framed like the other families."""
    cfg = make_cfg(tmp_path, classes="一十永東川三", writers={"form": 2})
    data = build(cfg)
    assert data.source_names == ["synthetic/form"]
    images = np.asarray(data.images)
    assert images.shape == (12, 64, 64) and images.max() == 255
    ink = (images > 128).mean(axis=(1, 2))
    assert (ink > 0.02).all()  # every cell still holds its character


def test_touch_writers_draw_thinner_lines_than_brush_writers(tmp_path) -> None:
    data = build(make_cfg(tmp_path, classes="一十永東", writers={"touch": 3, "brush": 3}))
    images, families = np.asarray(data.images), np.asarray(data.sources)
    ink = (images > 128).mean(axis=(1, 2))
    assert data.source_names == ["synthetic/brush", "synthetic/touch"]
    assert ink[families == 1].mean() < 0.7 * ink[families == 0].mean()


def test_kana_copies_draw_each_kana_anew(tmp_path) -> None:
    once = build(make_cfg(tmp_path, writers={"pen": 2}))
    thrice = build(make_cfg(tmp_path, writers={"pen": 2}, kana_copies=3))
    codes = np.asarray(thrice.codepoints)
    assert (codes == ord("あ")).sum() == 6 and (codes == ord("亜")).sum() == 2
    kana = np.asarray(thrice.images)[codes == ord("あ")]
    assert len({image.tobytes() for image in kana}) == 6  # every copy is its own sample
    first = np.asarray(once.images)[np.asarray(once.codepoints) == ord("あ")]
    assert any(np.array_equal(first[0], image) for image in kana)  # copy 0 is the plain sample
    with pytest.raises(DataSourceError, match="kana_copies"):
        build(make_cfg(tmp_path, kana_copies=0))


def test_a_small_kana_is_written_once_beside_its_full_size_twin(tmp_path) -> None:
    data = build(make_cfg(tmp_path, classes="あぁっ", writers={"pen": 2}, kana_copies=3))
    counts = Counter(chr(c) for c in np.asarray(data.codepoints))
    assert counts == {"あ": 6, "ぁ": 2, "っ": 6}  # っ without つ has no twin here


def test_held_out_writers_write_their_share_and_are_the_ones_the_split_holds_out(tmp_path):
    classes = "あいうえおかきくけこ亜唖娃阿哀愛挨姶逢葵茜穐悪握渥旭葦芦鯵梓圧斡扱宛姐虻"
    writers = {"pen": 3, "pencil": 3, "touch": 3}
    shares = {"val": 0.25, "test": 0.5}
    cfg = make_cfg(tmp_path, classes=classes, writers=writers, kana_copies=1)
    full = build(cfg)
    data = build(make_cfg(tmp_path, classes=classes, writers=writers, kana_copies=1,
                          heldout_classes=shares))  # fmt: skip
    split = splits.split_indices(data.writers, data.sources, val=0.1, test=0.1, seed=0)
    per_writer = Counter(np.asarray(data.writers).tolist())
    for name, share in [("train", 1.0), *shares.items()]:
        held = set(np.asarray(data.writers)[split[name]].tolist())
        assert held, name
        for writer in held:
            assert abs(per_writer[writer] / len(classes) - share) < 0.2, (name, writer)
    train = split["train"]
    full_train = splits.split_indices(full.writers, full.sources, val=0.1, test=0.1)["train"]
    np.testing.assert_array_equal(data.images[train], full.images[full_train])
    by_sample = make_cfg(tmp_path, classes=classes, writers=writers, kana_copies=1,
                         heldout_classes=shares, split={"by": "sample"})  # fmt: skip
    assert len(build(by_sample)) == len(full)


def test_a_font_writer_writes_each_font_thin_and_bold(tmp_path: Path, monkeypatch) -> None:
    """A font writer's emboldening varies by a pixel between samples (a writer drawn at weight 0
    of a serif font alone left thin Mincho unseen); a hand over a font glyph keeps its width."""
    weights: list[tuple[str, int]] = []
    glyph_image = fonts.glyph_image

    def record(file: str, char: str, weight: int = 0):
        weights.append((char, weight))
        return glyph_image(file, char, weight)

    monkeypatch.setattr(fonts, "glyph_image", record)
    font = str(fonts.resolve_font(**FONTS[0]))
    synthetic._init_worker({}, [font])
    chars = tuple((c, 0) for c in "一二三四五六七八九十")
    for writer in range(4):
        style = synthetic.render.writer_style("font", np.random.default_rng([7, writer, 0x110000]))
        weights.clear()
        synthetic.render_task((7, writer, "font", font, chars))
        seen = {w for _, w in weights}
        assert len(seen) > 1 and seen <= set(
            range(int(style.thickness) - 1, int(style.thickness) + 2)
        )
    weights.clear()
    style = synthetic.render.writer_style("pen", np.random.default_rng([7, 0, 0x110000]))
    synthetic.render_task((7, 0, "pen", "", (("Ａ", 0), ("Ｂ", 0))))
    assert [w for _, w in weights] == [int(style.thickness)] * 2


def test_paper_noise_is_half_normal_and_differs_from_image_to_image():
    from kanji_lab.data.synthetic.render import _paper_noise

    first = _paper_noise((90, 90), 8.0, np.random.default_rng(3))
    again = _paper_noise((90, 90), 8.0, np.random.default_rng(3))
    other = _paper_noise((90, 90), 8.0, np.random.default_rng(4))
    assert first.shape == (90, 90) and first.dtype == np.float32 and first.min() >= 0
    np.testing.assert_array_equal(first, again)  # the same for a seed
    assert not np.array_equal(first, other)
    rng = np.random.default_rng(5)  # one writer's images, one after the other
    assert not np.array_equal(_paper_noise((90, 90), 8.0, rng), _paper_noise((90, 90), 8.0, rng))
    # a half-normal of the normal's sd 8: mean 8 sqrt(2 / pi), mean square 64
    assert abs(first.mean() - 8.0 * np.sqrt(2 / np.pi)) < 0.2
    assert abs((first.astype(np.float64) ** 2).mean() - 64.0) < 3.0
    assert np.all(_paper_noise((4, 4), 0.0, np.random.default_rng(3)) == 0)
