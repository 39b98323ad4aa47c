"""End-of-fit export: the best weights to ONNX (float and INT8) and, if asked, bitsandbytes."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn

from kanji_lab.deploy.pipeline import ExportSettings, Model, export_all, summary
from kanji_lab.models.registry import build_network

log = logging.getLogger(__name__)


class OnnxExport(pl.Callback):
    """At the end of fit, on rank 0: rebuild the network, load the best checkpoint's weights into
    it (the live module is left alone) and write ``model.onnx`` and ``model.int8.onnx`` (plus
    ``model.<type>.safetensors`` for each ``bnb`` type) into ``dirpath``, with their checks.
    ``written`` lists the files afterwards and ``export_seconds`` the time it took."""

    def __init__(
        self,
        dirpath: str,
        opset: int | None = None,
        int8: bool = True,
        calibration_batches: int = 8,
        min_agreement: float = 0.9,
        bnb: list[str] | str | None = None,
    ) -> None:
        self.dirpath = Path(dirpath)
        bnb_types = [bnb] if isinstance(bnb, str) else list(bnb or [])
        self.settings = ExportSettings(opset, int8, calibration_batches, min_agreement, bnb_types)
        self.written: list[Path] = []
        self.report: dict | None = None
        self.export_seconds = 0.0

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        start = time.perf_counter()
        hp = pl_module.hparams
        net = build_network(hp.arch, list(hp.labels), **(hp.net or {}))
        source = best_weights(trainer, pl_module, net)
        model = Model(net.eval(), hp.arch, dict(hp.net or {}), list(hp.labels))
        datamodule = getattr(trainer, "datamodule", None)
        settings = self.settings
        if datamodule is None and settings.int8:
            log.warning("no datamodule to calibrate on: %s not written", "model.int8.onnx")
            settings = dataclasses.replace(settings, int8=False)
        self.report = export_all(self.dirpath, model, settings, datamodule)
        self.written = self.report.pop("paths")
        self.export_seconds = time.perf_counter() - start
        log.info("exported %s weights:\n%s", source, summary(self.report))


def best_weights(trainer: pl.Trainer, pl_module: pl.LightningModule, net: nn.Module) -> str:
    """Load the best checkpoint's network weights into ``net`` (the current ones when there is no
    best checkpoint); returns which it used."""
    callback = trainer.checkpoint_callback
    best = getattr(callback, "best_model_path", "") if callback else ""
    if best and Path(best).is_file():
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        # "net._orig_mod." when the network was torch.compile'd
        prefix = "net._orig_mod." if any(k.startswith("net._orig_mod.") for k in state) else "net."
        net.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        return f"best checkpoint {Path(best).name}"
    live = getattr(pl_module.net, "_orig_mod", pl_module.net)
    net.load_state_dict({k: v.detach().cpu() for k, v in live.state_dict().items()})
    return "final"
