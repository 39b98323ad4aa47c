"""The LightningModule shared by every architecture: loss, optimiser, schedule, metrics."""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassAccuracy

from kanji_lab.models.registry import build_network


class CharacterClassifier(pl.LightningModule):
    """Trains any registered architecture on character images.

    Every hyperparameter is a plain value (strings, numbers, lists), so checkpoints load with
    ``torch.load(weights_only=True)``. ``labels`` is the class index -> character map; it travels
    inside the checkpoint and the exported files.
    """

    def __init__(
        self,
        arch: str,
        labels: list[str],
        net: dict[str, Any] | None = None,
        lr: float = 3e-3,
        weight_decay: float = 0.05,
        warmup_epochs: float = 0.5,
        min_lr_ratio: float = 0.01,
        label_smoothing: float = 0.1,
        channels_last: bool = False,
        compile: bool = False,
        fused_optimizer: bool | None = None,
    ) -> None:
        """``channels_last`` stores activations NHWC; ``compile`` runs the network through
        ``torch.compile`` (the weights stay in ``self.net``); ``fused_optimizer`` uses the fused
        AdamW kernel (None: on CUDA only)."""
        super().__init__()
        self.save_hyperparameters()
        self.labels = list(labels)
        self.net = build_network(arch, self.labels, **(net or {}))
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        # not registered as a submodule: the state dict keeps plain ``net.`` keys
        object.__setattr__(self, "_compiled", torch.compile(self.net) if compile else None)
        n = len(self.labels)
        top5 = min(5, n)
        self.train_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc_top5 = MulticlassAccuracy(n, top_k=top5, average="micro")
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # the best score survives a resume
        self.test_acc = MulticlassAccuracy(n, average="micro")
        self.test_acc_top5 = MulticlassAccuracy(n, top_k=top5, average="micro")

    def forward(self, x: Tensor) -> Tensor:
        x = x.contiguous(memory_format=self.memory_format)
        return (self.net if self._compiled is None else self._compiled)(x)

    def forward_with_losses(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits plus any extra weighted loss terms the network defines for training.

        A network may define ``loss_terms(x, y) -> (logits, {name: weighted loss})`` (e.g. an
        auxiliary head); plain networks only define ``forward(x) -> logits``.
        """
        if hasattr(self.net, "loss_terms"):
            return self.net.loss_terms(x.contiguous(memory_format=self.memory_format), y)
        return self(x), {}

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=self.hparams.label_smoothing)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits, extra = self.forward_with_losses(x, y)
        loss = self.loss(logits, y)
        for name, term in extra.items():
            self.log(f"train/{name}", term)
            loss = loss + term
        self.train_acc(logits, y)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self.val_acc.reset()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val/loss", self.loss(logits, y), sync_dist=True)
        self.val_acc.update(logits, y)
        self.val_acc_top5.update(logits, y)
        self.log("val/acc_top5", self.val_acc_top5, prog_bar=False)

    def on_validation_epoch_end(self) -> None:
        acc = self.val_acc.compute()
        self.val_acc_best(acc)
        self.log("val/acc", acc, prog_bar=True, sync_dist=True)
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("test/loss", self.loss(logits, y), sync_dist=True)
        self.test_acc(logits, y)
        self.test_acc_top5(logits, y)
        self.log("test/acc", self.test_acc)
        self.log("test/acc_top5", self.test_acc_top5)

    def predict_step(self, batch: tuple[Tensor, Tensor] | Tensor, batch_idx: int) -> Tensor:
        """Top-1 class indices of a batch (``trainer.predict`` with the DataModule)."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x).argmax(1)

    def configure_optimizers(self) -> dict[str, Any]:
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
        hp = self.hparams
        fused = hp.fused_optimizer
        if fused is None:
            fused = self.device.type == "cuda"
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay}],
            lr=hp.lr,
            weight_decay=0.0,
            fused=fused or None,
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        per_epoch = total / max(1, self.trainer.max_epochs or 1)
        warmup = min(total - 1, int(hp.warmup_epochs * per_epoch))
        schedule = warmup_cosine(warmup, total, hp.min_lr_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())


def warmup_cosine(warmup: int, total: int, floor: float):
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine decay to ``floor``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
