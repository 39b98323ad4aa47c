"""One training job (``python -m kanji_lab``, through :mod:`kanji_lab.entry`): train, test with the
best weights, export, summarise."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from kanji_lab.atomic import write_json
from kanji_lab.callbacks.carbon import read_emissions
from kanji_lab.callbacks.process_group import ProcessGroupAtExit
from kanji_lab.callbacks.rng_state import RNGState
from kanji_lab.checkpoint_io import AtomicCheckpointIO
from kanji_lab.data.datamodule import CharacterDataModule
from kanji_lab.deploy.pipeline import ExportSettings, settings_from
from kanji_lab.deploy.run_files import best_checkpoint, write_run_files
from kanji_lab.models.module import CharacterClassifier
from kanji_lab.models.profile import describe as describe_cost
from kanji_lab.models.profile import profile
from kanji_lab.run_dir import (
    checkpoint_step,
    remove_stale_temporaries,
    resume_checkpoint,
    save_config,
)
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
        callbacks=[*callbacks, RNGState(), ProcessGroupAtExit()],
        logger=loggers or False,
        plugins=[AtomicCheckpointIO()],
    )


def export_settings(cfg: DictConfig) -> ExportSettings | None:
    """What the run writes beyond ``model.safetensors`` (``export:``; None with
    ``export.onnx=false``), with the bitsandbytes types of the ``quantization`` group."""
    spec = OmegaConf.to_container(cfg.export, resolve=True)
    if not spec.get("onnx", True):
        return None
    return settings_from(spec, OmegaConf.select(cfg, "quantization.bnb") or [])


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run the whole job; returns the metrics written to ``metrics.json``."""
    run_dir = Path(cfg.paths.output_dir)
    ckpt_path = resume_checkpoint(cfg, run_dir)
    remove_stale_temporaries(run_dir)
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

    if ckpt_path:
        step = checkpoint_step(ckpt_path)
        for logger in trainer.loggers:  # rows logged after the checkpoint are logged again
            if hasattr(logger, "resume_at"):
                logger.resume_at(step)

    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    timings["train_s"] = time.perf_counter() - start

    best = best_checkpoint(trainer)
    start = time.perf_counter()
    results = (
        trainer.test(model, datamodule=datamodule, ckpt_path=best) if cfg.test_after_fit else []
    )
    timings["test_s"] = time.perf_counter() - start

    start = time.perf_counter()
    files: list[Path] = []
    export: dict[str, Any] | None = None
    if trainer.is_global_zero:
        files, export = write_run_files(run_dir, trainer, model, datamodule, export_settings(cfg))
    timings["export_s"] = time.perf_counter() - start

    metrics = {
        **{k: float(v) for k, v in (results[0] if results else {}).items()},
        "val/acc_best": float(model.val_acc_best.compute()) if trainer.current_epoch else None,
        "arch": cfg.model.arch,
        "data": cfg.data.name,
        "num_classes": len(datamodule.labels),
        "parameters": model.num_parameters(),
        "macs_per_image": cost["macs"],
        "weights_bytes": cost["weights_bytes"],
        # model=hiercode: how many slots of the codebook belong to one class only
        "codebook": model.net.code_stats() if hasattr(model.net, "code_stats") else None,
        "epochs": trainer.current_epoch,
        "best_checkpoint": best,
        "timings": timings,
        "files": file_sizes(run_dir, files),
        "emissions": read_emissions(run_dir),
        # what the data source warned of (e.g. data=folder without writers: a per-sample split)
        "data_warnings": list(datamodule.data.info.get("warnings", [])),
        "export_error": export.get("error") if export else None,
        "run_dir": str(run_dir),
    }
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", metrics)
        print_summary(metrics)
    finish_wandb(trainer.loggers, metrics)  # one W&B run per job, also in a multirun
    return metrics
