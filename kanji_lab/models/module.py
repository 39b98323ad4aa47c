"""The LightningModule shared by every architecture: loss, optimiser, schedule, metrics."""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from kanji_lab.models.registry import build_network, stored_tables

log = logging.getLogger(__name__)
# an epoch's mean training loss at this share of ln(classes) or above: nothing was learned
CHANCE_SHARE = 0.98
# checkpoint entry holding the network's KanjiVG-derived tables (see ``stored_tables``)
TABLES_KEY = "net_tables"


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
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._install(build_network(arch, self.labels, **(net or {})))
        n = len(self.labels)
        top5 = min(5, n)
        self.train_acc = MulticlassAccuracy(n, average="micro")
        # the epoch's mean on this rank (no sync: only for the warning at chance level)
        self.train_loss = MeanMetric(sync_on_compute=False)
        self.val_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc_top5 = MulticlassAccuracy(n, top_k=top5, average="micro")
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # the best score survives a resume
        self.test_acc = MulticlassAccuracy(n, average="micro")
        self.test_acc_top5 = MulticlassAccuracy(n, top_k=top5, average="micro")

    def _install(self, net: torch.nn.Module) -> None:
        """Make ``net`` the network, in the memory format and compiled as configured."""
        self.net = net.to(memory_format=self.memory_format)
        compile = self.hparams.compile
        # not registered as submodules: the state dict keeps plain ``net.`` keys
        object.__setattr__(self, "_compiled", torch.compile(self.net) if compile else None)
        compiled_train = torch.compile(training_forward(self.net)) if compile else None
        object.__setattr__(self, "_compiled_train", compiled_train)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep what the network derived from KanjiVG (the RNN's components, HierCode's codes)."""
        tables = stored_tables(self.net)
        if tables:
            checkpoint[TABLES_KEY] = tables

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Rebuild the network with the checkpoint's tables where the installed KanjiVG gives
        others, so a checkpoint loads and resumes as it was trained on any machine."""
        tables = checkpoint.get(TABLES_KEY)
        if not tables or tables == stored_tables(self.net):
            return
        log.warning(
            "the checkpoint's radical tables differ from those the installed KanjiVG gives; "
            "using the checkpoint's"
        )
        hp = self.hparams
        self._install(build_network(hp.arch, self.labels, **(hp.net or {}), **tables))

    def forward(self, x: Tensor) -> Tensor:
        x = x.contiguous(memory_format=self.memory_format)
        return (self.net if self._compiled is None else self._compiled)(x)

    def forward_with_losses(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Training's logits plus any extra weighted loss terms the network defines.

        A network with more training outputs than logits (e.g. an auxiliary head) defines
        ``train_outputs(x) -> (logits, ...)`` and ``extra_losses(outputs, y) -> {name: loss}``;
        plain networks only ``forward(x) -> logits``. Either way the call goes through what
        ``compile`` and quantization-aware training wrap.
        """
        # built per call when not compiled: a stored closure would not pickle (ddp spawn)
        run = self._compiled_train or training_forward(self.net)
        outputs = run(x.contiguous(memory_format=self.memory_format))
        extra = self.net.extra_losses(outputs, y) if hasattr(self.net, "extra_losses") else {}
        return outputs[0], extra

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
        self.train_loss.update(loss.detach())
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def on_train_epoch_end(self) -> None:
        mean = float(self.train_loss.compute()) if self.train_loss.update_count else None
        self.train_loss.reset()
        chance = math.log(len(self.labels))
        if mean is not None and len(self.labels) > 1 and mean >= CHANCE_SHARE * chance:
            log.warning(
                "training loss %.3f after epoch %d is still ln(%d classes) = %.3f, the loss of "
                "guessing: the model is not learning (blank or mislabelled data? too high a "
                "learning rate?)",
                mean,
                self.current_epoch,
                len(self.labels),
                chance,
            )

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
        self.log("val/acc", acc, prog_bar=True, sync_dist=True)
        if self._trainer is not None and self.trainer.sanity_checking:
            return  # a few batches before training: not a score the best may be compared with
        self.val_acc_best(acc)
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


def training_forward(net: torch.nn.Module):
    """``x -> (logits, ...)``: the network's ``train_outputs``, else its forward as a 1-tuple.
    Looked up at each call, so a forward that quantization-aware training patches in is used."""
    if hasattr(net, "train_outputs"):
        return lambda x: net.train_outputs(x)
    return lambda x: (net(x),)


def warmup_cosine(warmup: int, total: int, floor: float):
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine decay to ``floor``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
