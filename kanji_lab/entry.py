"""The Hydra entry point of training (``python -m kanji_lab``), light to import: composing a
config (``--cfg job``, ``--help``, ``--info``, a bad override) answers without loading torch or
Lightning, which only the training itself (:mod:`kanji_lab.train`) imports."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from kanji_lab.config import config_dir
from kanji_lab.errors import reports_user_errors


@hydra.main(config_path=config_dir(), config_name="train", version_base="1.3")
@reports_user_errors
def main(cfg: DictConfig) -> float | None:
    """Train one job; returns ``cfg.optimized_metric`` for sweepers that optimise it."""
    import torch

    from kanji_lab.train import train

    torch.set_float32_matmul_precision("high")
    metrics = train(cfg)
    key = cfg.get("optimized_metric")
    return metrics.get(key) if key else None
