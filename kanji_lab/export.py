"""``python -m kanji_lab.export run_dir=<run> [export.opset=14]``: deployable files of a run.

Rebuilds the network from the run's ``model.safetensors`` and writes ``model.onnx`` and
``model.int8.onnx`` (and ``model.<type>.safetensors`` for each ``export.bnb`` type) into
``out_dir`` (the run directory by default), with the same checks as the end-of-fit export.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from kanji_lab.config import config_dir
from kanji_lab.data.datamodule import CharacterDataModule
from kanji_lab.deploy.pipeline import Model, export_all, settings_from, summary
from kanji_lab.deploy.weights import WEIGHTS_FILE, read_metadata
from kanji_lab.errors import reports_user_errors
from kanji_lab.evaluate import load_run_model

log = logging.getLogger(__name__)


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export the run ``cfg.run_dir``; returns the check report."""
    run_dir = Path(cfg.run_dir)
    net, labels, train_cfg = load_run_model(run_dir)
    meta = read_metadata(run_dir / WEIGHTS_FILE)
    settings = settings_from(OmegaConf.to_container(cfg.export, resolve=True))
    datamodule = _training_data(train_cfg, cfg, labels) if settings.int8 else None
    model = Model(net, meta["arch"], meta["net"], labels)
    report = export_all(Path(cfg.out_dir), model, settings, datamodule)
    report.pop("paths")
    print(f"exported {run_dir}:\n{summary(report)}", flush=True)
    return report


def _training_data(
    train_cfg: DictConfig, cfg: DictConfig, labels: list[str]
) -> CharacterDataModule:
    data = train_cfg.data
    with open_dict(data):
        data.cache_dir = cfg.paths.cache_dir
    datamodule = CharacterDataModule(
        data, batch_size=train_cfg.batch_size, labels=labels, seed=train_cfg.seed
    )
    datamodule.setup("fit")
    return datamodule


@hydra.main(config_path=config_dir(), config_name="export", version_base="1.3")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
