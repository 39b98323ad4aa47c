"""The deployment files of a training run, all written here from one set of weights.

:func:`best_weights` picks them: the best checkpoint's (by the monitored ``val/acc``), else the
final weights when the run has no best checkpoint. :func:`write_run_files` writes from them
``model.safetensors`` and ``labels.json`` and, when export settings are given
(the ``export:`` config), ``model.onnx``, ``model.int8.onnx``, the bitsandbytes files and
``export.json``, so every file of a run holds the same weights whether or not the run was tested.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from kanji_lab.atomic import write_json
from kanji_lab.data.datamodule import CharacterDataModule
from kanji_lab.deploy.onnx_export import ExportError
from kanji_lab.deploy.pipeline import REPORT_FILE, ExportSettings, Model, export_all, summary
from kanji_lab.deploy.weights import WEIGHTS_FILE, save_weights
from kanji_lab.models.registry import build_network, stored_tables

log = logging.getLogger(__name__)
LABELS_FILE = "labels.json"


def best_checkpoint(trainer: pl.Trainer) -> str | None:
    """The path of the run's best checkpoint, or None when it has none."""
    callback = trainer.checkpoint_callback
    path = getattr(callback, "best_model_path", "") if callback else ""
    return path if path and Path(path).is_file() else None


def best_weights(trainer: pl.Trainer, pl_module: pl.LightningModule) -> tuple[Model, str]:
    """A fresh network (eval mode, CPU) holding the weights every deployment file is written
    from, and which weights those are (``best checkpoint best.ckpt`` or ``final``)."""
    hp = pl_module.hparams
    live: nn.Module = getattr(pl_module.net, "_orig_mod", pl_module.net)
    net = build_network(hp.arch, list(hp.labels), **(hp.net or {}), **stored_tables(live))
    best = best_checkpoint(trainer)
    if best:
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        # "net._orig_mod." when the network was torch.compile'd
        prefix = "net._orig_mod." if any(k.startswith("net._orig_mod.") for k in state) else "net."
        net.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        source = f"best checkpoint {Path(best).name}"
    else:
        net.load_state_dict({k: v.detach().cpu() for k, v in live.state_dict().items()})
        source = "final"
    return Model(net.eval(), hp.arch, dict(hp.net or {}), list(hp.labels)), source


def write_run_files(
    run_dir: Path,
    trainer: pl.Trainer,
    pl_module: pl.LightningModule,
    datamodule: CharacterDataModule | None,
    settings: ExportSettings | None,
) -> tuple[list[Path], dict[str, Any] | None]:
    """Write every deployment file of the run from :func:`best_weights`; returns the paths
    and the export report (None without ``settings``)."""
    run_dir = Path(run_dir)
    model, source = best_weights(trainer, pl_module)
    files = [
        save_weights(run_dir / WEIGHTS_FILE, model.net, model.arch, model.net_cfg, model.labels),
        write_json(run_dir / LABELS_FILE, {"labels": model.labels}),
    ]
    if settings is None:
        log.info("wrote %s from the %s weights", WEIGHTS_FILE, source)
        return files, None
    if datamodule is None and settings.int8:
        log.warning("no datamodule to calibrate on: %s not written", "model.int8.onnx")
        settings = dataclasses.replace(settings, int8=False)
    try:
        report = export_all(run_dir, model, settings, datamodule)
    # a failed check or a crash of the exporter itself: the run's weights and metrics are kept,
    # the export is redone apart (an unexpected error keeps its traceback in the log)
    except Exception as exc:
        error = str(exc) if isinstance(exc, ExportError) else f"{type(exc).__name__}: {exc}"
        report = {"error": error, "reexport": f"python -m kanji_lab.export run_dir={run_dir}"}
        files.append(write_json(run_dir / REPORT_FILE, report))
        log.error(
            "export failed: %s; the weights are kept; re-export: %s",
            error,
            report["reexport"],
            exc_info=not isinstance(exc, ExportError),
        )
        return files, report
    files += report.pop("paths")
    log.info("exported the %s weights:\n%s", source, summary(report))
    return files, report
