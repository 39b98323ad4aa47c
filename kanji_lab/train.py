"""``python -m kanji_lab`` / ``kanji-lab``: train, test with the best weights, export, summarise."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from kanji_lab.callbacks.carbon import read_emissions
from kanji_lab.callbacks.checkpoint_io import AtomicCheckpointIO
from kanji_lab.callbacks.rng_state import RNGState
from kanji_lab.config import config_dir
from kanji_lab.data.datamodule import CharacterDataModule
from kanji_lab.errors import reports_user_errors
from kanji_lab.models.module import CharacterClassifier
from kanji_lab.models.profile import describe as describe_cost
from kanji_lab.models.profile import profile
from kanji_lab.models.weights import save_weights
from kanji_lab.run_dir import resume_checkpoint, save_config, write_json
from kanji_lab.summary import file_sizes, print_summary
from kanji_lab.wandb_setup import finish_wandb

log = logging.getLogger(__name__)


def build_datamodule(cfg: DictConfig, labels: list[str] | None = None) -> CharacterDataModule:
    """The DataModule described by a train or evaluate config."""
    return CharacterDataModule(
        cfg.data,
        batch_size=cfg.batch_size,
        eval_batch_size=cfg.get("eval_batch_size"),
        num_workers=cfg.num_workers,
        augment=OmegaConf.to_container(cfg.augment, resolve=True) if cfg.get("augment") else None,
        labels=labels,
        seed=cfg.seed,
        in_memory=cfg.perf.get("in_memory", "auto") if cfg.get("perf") else "auto",
    )


def build_model(cfg: DictConfig, labels: list[str]) -> CharacterClassifier:
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    perf = OmegaConf.to_container(cfg.perf, resolve=True) if cfg.get("perf") else {}
    return CharacterClassifier(
        arch=model_cfg["arch"],
        labels=labels,
        net=model_cfg.get("net"),
        **model_cfg["optim"],
        **{k: perf[k] for k in ("channels_last", "compile", "fused_optimizer") if k in perf},
    )


def build_trainer(cfg: DictConfig) -> pl.Trainer:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    return instantiate(
        cfg.trainer,
        callbacks=[*callbacks, RNGState()],
        logger=loggers or False,
        plugins=[AtomicCheckpointIO()],
    )


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run the whole job; returns the metrics written to ``metrics.json``."""
    run_dir = Path(cfg.paths.output_dir)
    ckpt_path = resume_checkpoint(cfg, run_dir)
    save_config(cfg, run_dir)
    pl.seed_everything(cfg.seed, workers=True)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    timings["data_s"] = time.perf_counter() - start

    model = build_model(cfg, datamodule.labels)
    cost = profile(model.net)
    log.info("model %s: %s", cfg.model.arch, describe_cost(cost))
    trainer = build_trainer(cfg)

    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    exported_in_fit = sum(getattr(cb, "export_seconds", 0.0) for cb in trainer.callbacks)
    timings["train_s"] = time.perf_counter() - start - exported_in_fit

    best = _best_checkpoint(trainer)
    start = time.perf_counter()
    results = (
        trainer.test(model, datamodule=datamodule, ckpt_path=best) if cfg.test_after_fit else []
    )
    timings["test_s"] = time.perf_counter() - start

    start = time.perf_counter()
    artifacts = export_run(run_dir, model, cfg) if trainer.is_global_zero else {}
    timings["export_s"] = time.perf_counter() - start + exported_in_fit

    metrics = {
        **{k: float(v) for k, v in (results[0] if results else {}).items()},
        "val/acc_best": float(model.val_acc_best.compute()) if trainer.current_epoch else None,
        "arch": cfg.model.arch,
        "data": cfg.data.name,
        "num_classes": len(datamodule.labels),
        "parameters": model.num_parameters(),
        "macs_per_image": cost["macs"],
        "weights_bytes": cost["weights_bytes"],
        "epochs": trainer.current_epoch,
        "best_checkpoint": best,
        "timings": timings,
        # plus what callbacks wrote (the ONNX export's model.onnx, model.int8.onnx, ...)
        "files": file_sizes(run_dir, [*artifacts, *_written_by_callbacks(trainer)]),
        "emissions": read_emissions(run_dir),
        "run_dir": str(run_dir),
    }
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", metrics)
        print_summary(metrics)
    finish_wandb(trainer.loggers, metrics)  # one W&B run per job, also in a multirun
    return metrics


def _written_by_callbacks(trainer: pl.Trainer) -> list[Path]:
    return [p for cb in trainer.callbacks for p in getattr(cb, "written", [])]


def _best_checkpoint(trainer: pl.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    path = getattr(callback, "best_model_path", "") if callback else ""
    return path or None


def export_run(run_dir: Path, model: CharacterClassifier, cfg: DictConfig) -> list[Path]:
    """Write the deployable files of a run: weights with metadata and the label map."""
    net_cfg = OmegaConf.to_container(cfg.model.net, resolve=True) if cfg.model.get("net") else {}
    weights = save_weights(
        run_dir / "model.safetensors", model.net, cfg.model.arch, net_cfg, model.labels
    )
    labels = write_json(run_dir / "labels.json", {"labels": model.labels})
    return [weights, labels]


@hydra.main(config_path=config_dir(), config_name="train", version_base="1.3")
@reports_user_errors
def main(cfg: DictConfig) -> float | None:
    """Entry point; returns ``cfg.optimized_metric`` for sweepers that optimise it."""
    torch.set_float32_matmul_precision("high")
    metrics = train(cfg)
    key = cfg.get("optimized_metric")
    return metrics.get(key) if key else None


if __name__ == "__main__":
    main()
