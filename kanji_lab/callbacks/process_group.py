"""The Lightning callback that closes a gloo process group at exit in every rank (why:
:mod:`kanji_lab.process_group`)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch.distributed as dist

from kanji_lab.process_group import destroy_process_group_at_exit


class ProcessGroupAtExit(pl.Callback):
    """In every rank, once the process group exists, close it when the process exits."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if dist.is_available() and dist.is_initialized():
            destroy_process_group_at_exit()
