"""The prepare and dump commands, and the folder source reading dump's output back."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image, ImageDraw

from kanji_lab import dump, prepare
from kanji_lab.config import config_dir
from kanji_lab.data import cache, etl, sources
from kanji_lab.data.images import normalize_image
from kanji_lab.errors import DataSourceError
from tests.etl_fixtures import build_root

REPO = Path(__file__).resolve().parent.parent


def compose_cfg(name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(name, overrides=overrides)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return build_root(tmp_path_factory.mktemp("etl"), ("ETL9G", "ETL8G", "ETL7", "ETL6", "ETL9B"))


@pytest.mark.parametrize(
    "name", ["etl9g", "etl8g", "etl7", "etl6", "etl1", "etl8b", "etl9b", "combined_all_etl",
             "auto", "folder"],
)  # fmt: skip
def test_data_configs_compose(name, tmp_path):
    cfg = compose_cfg("prepare", [f"data={name}", f"paths.cache_dir={tmp_path}"])
    assert cfg.task_name == "prepare"
    assert cfg.data.source == name and cfg.data.cache_dir == str(tmp_path)
    assert cfg.data.split.by == "writer"
    assert name in sources.available()


def test_prepare_builds_the_cache(root, tmp_path):
    cfg = compose_cfg(
        "prepare",
        ["data=etl9g", f"data.root={root}", f"paths.cache_dir={tmp_path}", "progress=false"],
    )
    folder = prepare.prepare(cfg)
    assert folder == tmp_path / "etl9g" and len(cache.open_cache(folder)) == 6


def test_dump_matches_the_reader(root, tmp_path):
    cfg = compose_cfg("dump", ["data=combined_all_etl", f"data.root={root}", f"out={tmp_path}"])
    assert dump.dump(cfg.data, tmp_path) == 6 + 6 + 16 + 21
    rows = list(csv.DictReader((tmp_path / "labels.csv").read_text("utf-8").splitlines()))
    assert list(rows[0]) == ["path", "char", "jis", "part", "writer", "sheet"]
    for part, file in [("ETL9G", "ETL9G/ETL9G_01"), ("ETL7", "ETL7/ETL7SC_1")]:
        records = etl.read_file(root / file, part)
        mine = [r for r in rows if r["path"].startswith(f"{part}/{Path(file).name}_")]
        assert len(mine) == len(records)
        levels = records.levels().astype(int)
        scale = 255 / records.part.layout.max_level
        for i, row in enumerate(mine):
            png = np.asarray(Image.open(tmp_path / row["path"]), dtype=int)
            assert np.abs((255 - png) - levels[i] * scale).max() <= 0.5
            assert row["char"] == chr(records.codepoints[i])
            assert int(row["writer"]) == records.writers[i]
            assert int(row["sheet"]) == records.sheets[i]
            assert int(row["jis"], 16) == records.codes[i]


def test_dump_limit_and_non_etl_source(root, tmp_path):
    cfg = compose_cfg("dump", ["data=etl6", f"data.root={root}", f"out={tmp_path}"])
    assert dump.dump(cfg.data, tmp_path / "d", limit=5) == 5
    assert len(list((tmp_path / "d/ETL6").glob("*.png"))) == 5
    cfg = compose_cfg("dump", ["data=folder", f"data.root={root}", f"out={tmp_path}"])
    with pytest.raises(DataSourceError, match="dump reads ETL sources"):
        dump.dump(cfg.data, tmp_path / "e")


def test_dump_command_line_then_folder_source(root, tmp_path):
    env = {**os.environ, "KANJI_LAB_OUTPUT": str(tmp_path / "runs")}
    out = tmp_path / "dumped"
    args = [sys.executable, "-m", "kanji_lab.dump", "data=etl9b", f"data.root={root}", f"out={out}"]
    subprocess.run(args, check=True, cwd=REPO, env=env, capture_output=True)
    cfg = compose_cfg("prepare", ["data=folder", f"data.root={out}", f"paths.cache_dir={tmp_path}"])
    data = cache.open_cache(sources.build_cache(cfg.data, False))
    reference = etl.read_file(root / "ETL9B/ETL9B_1", "ETL9B")
    assert len(data) == 9
    assert data.codepoints[:6].tolist() == reference.codepoints.tolist()
    assert data.writers[:6].tolist() == [0, 0, 0, 1, 1, 1]  # from the writer column
    assert data.images.dtype == np.uint8 and data.images.max() == 255


def test_folder_source_errors(tmp_path):
    cfg = compose_cfg(
        "prepare", ["data=folder", f"data.root={tmp_path}", f"paths.cache_dir={tmp_path}"]
    )
    with pytest.raises(DataSourceError, match="labels.csv not found"):
        sources.build_cache(cfg.data, False)
    (tmp_path / "labels.csv").write_text("path,char\nbroken.png,亜\n")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataSourceError, match="broken.png"):
        sources.build_cache(cfg.data, False)
    (tmp_path / "labels.csv").write_text("path,char\nbroken.png,亜亜\n")
    with pytest.raises(DataSourceError, match="not one character"):
        sources.build_cache(cfg.data, False)
    (tmp_path / "labels.csv").write_text("file,label\n")
    with pytest.raises(DataSourceError, match="missing column"):
        sources.build_cache(cfg.data, False)


def test_folder_source_one_writer_per_image_and_polarity(tmp_path):
    rows = ["path,char,extra"]
    for i, (paper, ink) in enumerate([(255, 0), (0, 255), (200, 30)]):
        img = Image.new("L", (90, 60), paper)
        ImageDraw.Draw(img).rectangle([30, 10, 45, 50], fill=ink)
        img.save(tmp_path / f"{i}.png")
        rows.append(f"{tmp_path / f'{i}.png' if i == 2 else f'{i}.png'},亜,x")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    cfg = compose_cfg(
        "prepare", ["data=folder", f"data.root={tmp_path}", f"paths.cache_dir={tmp_path}/c"]
    )
    data = cache.open_cache(sources.build_cache(cfg.data, False))
    assert data.writers.tolist() == [0, 1, 2]
    assert np.array_equal(data.images[0], data.images[1])  # polarity detected per image
    assert data.images[0, 32, 32] == 255 and data.images[0, 0, 0] == 0


def test_folder_cache_is_rebuilt_when_the_polarity_rule_changes(tmp_path, monkeypatch):
    """A cache of image files holds the polarity each image was read with: a new rule (a
    framed cell read as light ink on dark before) must not reuse it."""
    from kanji_lab.data import folder as folder_source

    Image.new("L", (20, 20), 255).save(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text("path,char\na.png,亜\n")
    rows = [{"path": "a.png", "char": "亜"}]
    before = folder_source.fingerprint(tmp_path, rows, "auto")
    monkeypatch.setattr(folder_source, "POLARITY_VERSION", folder_source.POLARITY_VERSION + 1)
    assert folder_source.fingerprint(tmp_path, rows, "auto") != before


def test_normalize_image_modes():
    img = Image.new("RGBA", (40, 80), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle([10, 10, 30, 70], fill=(0, 0, 0, 255))
    out = normalize_image(img)
    assert out.shape == (64, 64) and out.dtype == np.uint8
    assert out[32, 32] == 255 and out[32, 2] == 0  # transparent = paper; centred, padded to square
    assert normalize_image(Image.new("L", (10, 10), 255)).max() == 0  # blank stays blank
    forced = normalize_image(Image.new("L", (10, 10), 255), invert="false")
    assert forced.max() == 0
    with pytest.raises(ValueError, match="invert"):
        normalize_image(img, invert="maybe")


def _folder_of_images(root: Path, header: str, lines: list[str]) -> None:
    """Ten images of 亜/唖 in sub-folders a/ and b/ (five each), listed in labels.csv."""
    for i in range(10):
        path = root / ("a" if i < 5 else "b") / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        img = Image.new("L", (64, 64), 255)
        ImageDraw.Draw(img).rectangle([10 + i, 10, 30 + i, 50], fill=0)
        img.save(path)
    (root / "labels.csv").write_text("\n".join([header, *lines]) + "\n")


def test_folder_without_writers_warns_and_records_it(tmp_path, caplog):
    from kanji_lab.train import train
    from tests.conftest import compose_train

    data = tmp_path / "images"
    _folder_of_images(
        data, "path,char", [f"{'ab'[i // 5]}/{i}.png,{'亜唖'[i % 2]}" for i in range(10)]
    )
    folder = ["data=folder", f"data.root={data}", "data.split.val=0.2", "data.split.test=0.2"]
    tiny = ["model.net.width=8", "model.net.features=32", "debug=fdr", "trainer.accelerator=cpu"]
    cfg = compose_train(
        [*folder, *tiny, "callbacks.progress_bar=null"], tmp_path / "run", tmp_path / "c"
    )
    with caplog.at_level(logging.WARNING):
        metrics = train(cfg)
    assert "every image is its own writer" in caplog.text
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(written["data_warnings"]) == 1 and "per sample" in written["data_warnings"][0]
    assert metrics["data_warnings"] == written["data_warnings"]


@pytest.mark.parametrize("group_by, groups", [("folder", [0] * 5 + [1] * 5), ("hand", [0, 1] * 5)])
def test_folder_grouped_by_sub_folder_or_column(tmp_path, caplog, group_by, groups):
    lines = [f"{'ab'[i // 5]}/{i}.png,亜,h{i % 2}" for i in range(10)]
    _folder_of_images(tmp_path, "path,char,hand", lines)
    overrides = ["data=folder", f"data.root={tmp_path}", f"data.group_by={group_by}"]
    cfg = compose_cfg("prepare", [*overrides, f"paths.cache_dir={tmp_path}/c"])
    with caplog.at_level(logging.WARNING):
        data = cache.open_cache(sources.build_cache(cfg.data, False))
    assert data.writers.tolist() == groups
    assert data.info["writers"] == {"grouped_by": group_by, "groups": 2}
    assert not data.info["warnings"] and "own writer" not in caplog.text
    with pytest.raises(DataSourceError, match="no 'nope' column"):
        cfg.data.group_by = "nope"
        sources.build_cache(cfg.data, False)
