"""Finding files, errors that name the fix, caches, writer ids and combined vocabularies."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from kanji_lab.data import cache, etl, sources
from kanji_lab.data.datamodule import CharacterDataModule
from kanji_lab.data.etl import source as etl_source
from kanji_lab.errors import DataSourceError
from tests.etl_fixtures import build_root, g_file, g_record, glyph, write

ALL = ("ETL9G", "ETL8G", "ETL9B", "ETL8B", "ETL7", "ETL6", "ETL1")


def data_cfg(source: str, root: Path | None, cache_dir: Path, **extra) -> OmegaConf:
    return OmegaConf.create(
        {"source": source, "name": source, "root": str(root) if root else None,
         "cache_dir": str(cache_dir), "workers": 1, **extra}
    )  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return build_root(tmp_path_factory.mktemp("etl"), ALL)


def build(source, root, cache_dir, **extra):
    return cache.open_cache(sources.build_cache(data_cfg(source, root, cache_dir, **extra), False))


@pytest.mark.parametrize(
    "source, count, chars",
    [("etl9g", 6, "亜韻あ"), ("etl8g", 6, "亜ゃっ"), ("etl9b", 9, "亜韻あ"), ("etl8b", 9, "亜ゃっ"),
     ("etl7", 16, "あかゐ゛"), ("etl6", 21, "アカヰ゛A0¥"), ("etl1", 6, "01イ")],
)  # fmt: skip
def test_each_source_builds_a_cache(root, tmp_path, source, count, chars):
    data = build(source, root, tmp_path)
    assert len(data) == count
    assert data.images.dtype == np.uint8 and data.images.shape[1:] == (64, 64)
    assert data.images.max() == 255
    assert data.codepoints.dtype == np.int32 and data.writers.dtype == np.int32
    assert data.sources.dtype == np.int16
    assert "".join(data.characters) == "".join(sorted(chars))


def test_9g_and_9b_share_writers_8g_and_8b_share_writers(root, tmp_path):
    w9g = set(build("etl9g", root, tmp_path).writers.tolist())
    w9b = set(build("etl9b", root, tmp_path).writers.tolist())
    w8g = set(build("etl8g", root, tmp_path).writers.tolist())
    w8b = set(build("etl8b", root, tmp_path).writers.tolist())
    assert w9g == {900001, 900002} and w9g < w9b
    assert w8g == {800001, 800002} and w8g < w8b
    assert not (w9g | w9b) & (w8g | w8b)


def test_combined_vocabulary_and_distinct_writers(root, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        data = build("combined_all_etl", root, tmp_path)
    assert "ETL parts used: ETL6, ETL7, ETL8G, ETL9G" in caplog.text
    assert data.source_names == ["ETL6", "ETL7", "ETL8G", "ETL9G"]
    # 亜 (8G and 9G), あ (7 and 9G), ゛ (6 and 7) de-duplicated; never per-file offsets
    assert len(data.characters) == 14
    assert data.characters == sorted(set("亜韻あゃっかゐ゛アカヰA0¥"))
    families = {}
    for w, s in zip(data.writers.tolist(), data.sources.tolist(), strict=True):
        families.setdefault(w, set()).add(data.source_names[s])
    assert all(len(f) == 1 for f in families.values())
    assert len(families) == 2 + 2 + 3 + 3  # 9G, 8G, ETL7 (L and S by sheet), ETL6


def test_combined_uses_the_subset_present(tmp_path, caplog):
    r = build_root(tmp_path / "root", ("ETL9G", "ETL7"))
    with caplog.at_level(logging.INFO):
        data = build("combined_all_etl", r, tmp_path / "cache")
    assert data.source_names == ["ETL7", "ETL9G"]
    assert "not found, skipped: ETL6, ETL8G" in caplog.text


def test_writer_split_never_leaks(root, tmp_path):
    """The DataModule's own split of combined ETL data: no writer in two splits, every sample in
    exactly one, each part represented in training, the same split for the same seed."""
    cfg = data_cfg("combined_all_etl", root, tmp_path)
    cfg.split = {"by": "writer", "val": 0.25, "test": 0.25, "seed": 0}
    dm = CharacterDataModule(cfg)
    dm.setup("fit")
    writers = np.asarray(dm.data.writers)
    sides = {k: set(writers[dm.splits[k]].tolist()) for k in ("train", "val", "test")}
    assert all(sides[k] for k in sides), sides
    assert not sides["train"] & sides["val"] and not sides["train"] & sides["test"]
    assert not sides["val"] & sides["test"]
    together = np.concatenate([dm.splits[k] for k in ("train", "val", "test")])
    assert sorted(together.tolist()) == list(range(len(writers)))
    names = np.array(dm.data.source_names)[np.asarray(dm.data.sources)]
    assert set(names[dm.splits["train"]]) == set(dm.data.source_names)
    again = CharacterDataModule(cfg)
    again.setup("fit")
    assert all(np.array_equal(again.splits[k], dm.splits[k]) for k in sides)
    assert np.unique(writers, return_counts=True)[1].min() >= 3  # several characters a writer


def test_cache_reused_then_rebuilt_on_change(tmp_path):
    r = build_root(tmp_path / "root", ("ETL9G",))
    cfg = data_cfg("etl9g", r, tmp_path / "cache")
    folder = sources.build_cache(cfg, False)
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    assert sources.build_cache(cfg, False) == folder
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp  # reused
    write(r / "ETL9G/ETL9G_01", g_file("9G", [1], [0x3021]))  # changed input
    assert len(cache.open_cache(sources.build_cache(cfg, False))) == 1
    cfg.include_models = True  # changed parameter
    sources.build_cache(cfg, False)
    assert (folder / "manifest.json").stat().st_mtime_ns != stamp
    assert not list(folder.parent.glob("*.tmp*"))


def test_cache_rebuilt_when_a_file_is_rewritten_in_place_at_the_same_size(tmp_path):
    """Same size, same first records, other content further in: the cache must not be reused,
    neither when the modification time moves nor when it was kept (cp -p, an archive)."""
    r = build_root(tmp_path / "root", ("ETL9G",))
    path = r / "ETL9G/ETL9G_01"
    cfg = data_cfg("etl9g", r, tmp_path / "cache")
    first = cache.open_cache(sources.build_cache(cfg, False)).codepoints.tolist()
    record = etl.PARTS["ETL9G"].layout.record_length
    raw = bytearray(path.read_bytes())
    assert len(raw) // record == 6
    kept = path.stat()
    other = g_file("9G", [21], [0x3021])[0]  # the last record: 亜 in place of あ
    raw[-record:] = other
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    rebuilt = cache.open_cache(sources.build_cache(cfg, False)).codepoints.tolist()
    assert rebuilt[:-1] == first[:-1] and rebuilt[-1] == ord("亜") != first[-1]


def test_parallel_build_equals_serial(root, tmp_path):
    serial = build("combined_all_etl", root, tmp_path / "a")
    parallel = build("combined_all_etl", root, tmp_path / "b", workers=2)
    assert np.array_equal(serial.images, parallel.images)
    assert np.array_equal(serial.codepoints, parallel.codepoints)
    assert np.array_equal(serial.writers, parallel.writers)


def test_files_found_in_the_root_itself(tmp_path):
    write(tmp_path / "root/ETL9G_01", g_file("9G", [1], [0x3021]))
    assert len(build("etl9g", tmp_path / "root", tmp_path / "cache")) == 1


def test_no_files_error_lists_names_places_and_url(tmp_path):
    (tmp_path / "root/ETL9G").mkdir(parents=True)
    write(tmp_path / "root/ETL9G/etl9g_01", g_file("9G", [1], [0x3021]))
    with pytest.raises(DataSourceError) as err:
        build("etl9g", tmp_path / "root", tmp_path / "cache")
    text = str(err.value)
    assert "ETL9G_01" in text and str(tmp_path / "root/ETL9G") in text
    assert "http://etlcdb.db.aist.go.jp/" in text and "case-sensitive" in text


def test_root_not_set_or_missing(tmp_path):
    with pytest.raises(DataSourceError, match="KANJI_LAB_DATA"):
        build("etl9g", None, tmp_path)
    with pytest.raises(DataSourceError, match="not a folder"):
        build("etl9g", tmp_path / "nowhere", tmp_path)


def test_file_of_another_part_in_the_folder(tmp_path):
    r = build_root(tmp_path / "root", ("ETL9G",))
    shutil.copy(r / "ETL9G/ETL9G_01", r / "ETL9G/ETL8G_01")
    with pytest.raises(DataSourceError, match="ETL8G file inside the ETL9G folder"):
        build("etl9g", r, tmp_path / "cache")


def test_9g_content_under_an_8g_name_fails(tmp_path):
    r = build_root(tmp_path / "root", ("ETL9G",))
    (r / "ETL8G").mkdir()
    shutil.copy(r / "ETL9G/ETL9G_01", r / "ETL8G/ETL8G_01")
    with pytest.raises(DataSourceError, match="not an ETL8G file"):
        build("etl8g", r, tmp_path / "cache")


def test_truncated_file_names_file_and_part(tmp_path):
    path = write(
        tmp_path / "root/ETL9G/ETL9G_01", [g_record("9G", 1, 0x3021, glyph(127, 128, 15, 0))]
    )
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataSourceError, match="ETL9G_01 .*not a whole number of ETL9G"):
        build("etl9g", tmp_path / "root", tmp_path / "cache")


def test_cache_inside_the_data_root_is_refused(root):
    with pytest.raises(DataSourceError, match="inside data.root"):
        build("etl9g", root, root / "cache")


def test_auto_picks_the_largest_etl_source(root, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        data = build("auto", root, tmp_path)
    assert "data=auto: using combined_all_etl" in caplog.text
    assert (tmp_path / "combined_all_etl/manifest.json").is_file()
    assert len(data) == 49
    only7 = build_root(tmp_path / "only7", ("ETL7",))
    assert etl_source.choose_auto(data_cfg("auto", only7, tmp_path)) == "combined_all_etl"
    assert etl_source.choose_auto(data_cfg("auto", tmp_path / "empty", tmp_path)) is None


@pytest.mark.parametrize(
    "parts, chosen",
    [
        (("ETL9B",), "etl9b"),
        (("ETL8B",), "etl8b"),
        (("ETL1",), "etl1"),
        (("ETL9B", "ETL1"), "etl9b"),
    ],
)
def test_auto_considers_every_etl_part(tmp_path, parts, chosen):
    only = build_root(tmp_path / "root", parts)
    assert etl_source.choose_auto(data_cfg("auto", only, tmp_path / "cache")) == chosen


def test_auto_falls_back_to_synthetic(tmp_path, monkeypatch, caplog):
    seen = {}

    def fake_synthetic(cfg, progress):
        seen["cfg"] = cfg
        return tmp_path / "synthetic"

    monkeypatch.setitem(sources._REGISTRY.entries, "synthetic", fake_synthetic)
    with caplog.at_level(logging.INFO):
        got = sources.build_cache(data_cfg("auto", None, tmp_path / "c"), False)
    assert got == tmp_path / "synthetic"
    assert seen["cfg"].source == "synthetic" and seen["cfg"].cache_dir == str(tmp_path / "c")
    assert "using synthetic" in caplog.text


def test_unknown_part_in_parts(root, tmp_path):
    with pytest.raises(DataSourceError, match="unknown ETL parts"):
        build("combined_all_etl", root, tmp_path, parts=["ETL10"])


def test_data_classes_keeps_those_classes_of_etl_files(root, tmp_path):
    """data.classes on ETL data: the vocabulary and every split hold those classes alone."""
    cfg = data_cfg("combined_all_etl", root, tmp_path, classes="亜あ")
    cfg.split = {"by": "writer", "val": 0.25, "test": 0.25, "seed": 0}
    dm = CharacterDataModule(cfg)
    dm.setup("fit")
    assert dm.labels == ["あ", "亜"]
    codes = np.asarray(dm.data.codepoints)
    kept = np.concatenate([dm.splits[k] for k in ("train", "val", "test")])
    assert set(codes[kept].tolist()) == {ord("あ"), ord("亜")}
    assert len(kept) == np.isin(codes, [ord("あ"), ord("亜")]).sum() == len(dm.splits["all"])


@pytest.mark.parametrize(
    "classes, message", [("ヴ", "keeps none of the"), ("nosuchset", "not a named class set")]
)
def test_data_classes_that_keep_nothing_are_refused(root, tmp_path, classes, message):
    dm = CharacterDataModule(data_cfg("etl9g", root, tmp_path, classes=classes))
    with pytest.raises(DataSourceError, match=message):
        dm.setup("fit")


def test_extra_synthetic_samples_are_made_for_the_kept_classes_only(root, tmp_path):
    cfg = data_cfg("etl9g", root, tmp_path, classes="あ", extra=["synthetic"], extra_below=None)
    dm = CharacterDataModule(cfg)
    dm.setup("fit")
    assert dm.labels == ["あ"]
    names = np.array(dm.data.source_names)[np.asarray(dm.data.sources)]
    synthetic = np.char.startswith(names.astype(str), "synthetic/")
    assert synthetic.any() and set(np.asarray(dm.data.codepoints)[synthetic].tolist()) == {
        ord("あ")
    }
