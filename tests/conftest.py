"""Shared fixtures: a tiny registered data source and Hydra composition helpers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

from kanji_lab.config import config_dir
from kanji_lab.data import cache, cache_writer, sources

TINY_CLASSES = "亜唖娃阿哀"


@sources.register("tiny")
def build_tiny(cfg: DictConfig, progress: bool) -> Path:
    """A fast stand-in source: a bar pattern per class, shifted and noised per writer."""
    fingerprint = {"classes": cfg.classes, "writers": cfg.writers, "seed": cfg.seed}
    key = hashlib.sha1(repr(fingerprint).encode()).hexdigest()[:10]
    folder = Path(cfg.cache_dir) / f"tiny-{key}"
    if cache.is_complete(folder, fingerprint):
        return folder
    rng = np.random.default_rng(cfg.seed)
    chars = list(cfg.classes)
    images, codepoints, writers, styles = [], [], [], []
    for writer in range(cfg.writers):
        shift = rng.integers(-3, 4, size=2)
        for k, char in enumerate(chars):
            img = np.zeros((64, 64), np.float32)
            img[16 + 6 * k : 20 + 6 * k, 10:54] = 1.0
            img[10:54, 12 + 8 * (k % 5) : 16 + 8 * (k % 5)] = 1.0
            img = np.roll(img, shift, axis=(0, 1)) + rng.normal(0, 0.1, img.shape)
            images.append(np.clip(img * 255, 0, 255).astype(np.uint8))
            codepoints.append(ord(char))
            writers.append(writer)
            styles.append(writer % 2)
    data = cache.CharacterSet(
        images=np.stack(images),
        codepoints=np.array(codepoints),
        writers=np.array(writers),
        sources=np.array(styles),
        source_names=["tiny/a", "tiny/b"],
    )
    return cache_writer.write_cache(folder, data, fingerprint)


@pytest.fixture
def tmp_cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def compose_app(name: str, overrides: list[str], output_dir: Path, cache_dir: Path) -> DictConfig:
    """Config ``name`` (train, evaluate, export, ...) as the command line would compose it, with
    the output directory fixed (Hydra's ``hydra:`` resolvers are unavailable in the compose API)."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(name, overrides=[f"paths.cache_dir={cache_dir}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def compose_train(overrides: list[str], run_dir: Path, cache_dir: Path) -> DictConfig:
    """The train config with its run directory fixed."""
    return compose_app("train", overrides, run_dir, cache_dir)


def tiny_overrides(writers: int = 10) -> list[str]:
    """Overrides that swap the default data for the tiny source and shrink the model."""
    return [
        "data.source=tiny",
        "data.name=tiny",
        f"data.classes='{TINY_CLASSES}'",
        f"++data.writers={writers}",
        "model.net.width=8",
        "model.net.features=32",
        "batch_size=16",
        "eval_batch_size=16",
        "trainer.accelerator=cpu",
        "callbacks.progress_bar=null",
    ]


def resolved(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def tiny_data(cache_dir: Path, writers: int = 12) -> DictConfig:
    """A data config of the tiny source, split by writer."""
    return OmegaConf.create(
        {
            "source": "tiny",
            "name": "tiny",
            "classes": TINY_CLASSES,
            "writers": writers,
            "seed": 0,
            "cache_dir": str(cache_dir),
            "split": {"by": "writer", "val": 0.1, "test": 0.1, "seed": 0},
        }
    )
