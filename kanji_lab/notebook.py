"""Helpers for notebooks: a data source or a finished run in one call.

from kanji_lab.notebook import load_run
run = load_run("outputs/train/runs/<run>")      # best checkpoint, labels, data of the run
scores = run.score("test")                       # top-1/top-5, per class, confused pairs
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

from kanji_lab.config import config_dir
from kanji_lab.data.datamodule import CharacterDataModule
from kanji_lab.evaluate import predict_split, score
from kanji_lab.models.module import CharacterClassifier
from kanji_lab.run_dir import CONFIG_FILE, RunDirError, checkpoint_dir
from kanji_lab.train import build_datamodule


def compose_config(overrides: list[str] | str = (), config_name: str = "train") -> DictConfig:
    """A command's config as ``python -m kanji_lab <overrides>`` would compose it (a string is
    split on spaces), with the run directory left unset."""
    if isinstance(overrides, str):
        overrides = overrides.split()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = None
    return cfg


def data_module(overrides: list[str] | str = (), stage: str = "fit") -> CharacterDataModule:
    """The DataModule of ``data=...`` overrides, set up (its cache built on first use)."""
    datamodule = build_datamodule(compose_config(overrides))
    datamodule.setup(stage)
    return datamodule


def newest_run(root: str | Path | None = None) -> Path:
    """The most recent run under ``<output root>/train/runs`` (``KANJI_LAB_OUTPUT`` or outputs)."""
    root = Path(root or os.environ.get("KANJI_LAB_OUTPUT", "outputs")) / "train" / "runs"
    runs = [p for p in root.glob("*") if (p / CONFIG_FILE).is_file()]
    if not runs:
        raise RunDirError(f"no runs under {root}; train one with python -m kanji_lab")
    return max(runs, key=lambda p: p.stat().st_mtime)


@dataclass
class LoadedRun:
    """A finished run: its model (best checkpoint, eval mode), labels, config and data."""

    run_dir: Path
    model: CharacterClassifier
    labels: list[str]
    config: DictConfig
    datamodule: CharacterDataModule

    def predict(self, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """Top-5 class indices ``(N, 5)`` and targets ``(N,)`` of a split, in split order."""
        preds, targets, _ = predict_split(self.model, self.datamodule, split)
        return preds, targets

    def images(self, split: str = "test") -> np.ndarray:
        """The uint8 images of a split, in the order :meth:`predict` uses."""
        return np.asarray(self.datamodule.data.images[self.datamodule.splits[split]])

    def score(self, split: str = "test", top: int = 20) -> dict[str, Any]:
        """What ``python -m kanji_lab.evaluate`` reports: top-1/top-5, per class and per source
        accuracy, the ``top`` most confused pairs."""
        preds, targets = self.predict(split)
        data, rows = self.datamodule.data, self.datamodule.splits[split]
        names = np.array(data.source_names)[np.asarray(data.sources)[rows]]
        codepoints = np.asarray(data.codepoints)[rows]
        return score(preds, targets, self.labels, codepoints, names.tolist(), top)


def load_run(
    run_dir: str | Path, checkpoint: str = "best", cache_dir: str | None = None
) -> LoadedRun:
    """Load ``checkpoints/<checkpoint>.ckpt`` of a run with the data it was trained on (its test
    split by writer as in training). ``cache_dir`` overrides where the data cache is looked for."""
    run_dir = Path(run_dir)
    ckpt = checkpoint_dir(run_dir) / f"{checkpoint}.ckpt"
    if not ckpt.is_file():
        raise RunDirError(f"{ckpt} not found: pass the directory of a training run")
    model = CharacterClassifier.load_from_checkpoint(ckpt, map_location="cpu").eval()
    config = OmegaConf.load(run_dir / CONFIG_FILE)
    if cache_dir:
        config.data.cache_dir = cache_dir
    datamodule = build_datamodule(config, labels=model.labels)
    datamodule.setup("test")
    return LoadedRun(run_dir, model, model.labels, config, datamodule)
