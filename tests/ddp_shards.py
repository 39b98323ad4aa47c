"""Run by tests/test_ddp.py in a fresh interpreter (DDP leaves process-wide state behind): two
epochs under ``trainer=ddp_sim`` (2 spawned CPU processes, gloo), once with the images resident and
once streamed from the cache; each rank writes the rows of every training batch it saw."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from hydra.utils import instantiate

from kanji_lab.callbacks.process_group import ProcessGroupAtExit
from kanji_lab.data.datamodule import CharacterDataModule
from tests.conftest import compose_train, tiny_data  # the import registers the tiny source

BATCH = 5  # the tiny training split (40 samples) makes 8 batches, an even number: no padding


class RowDataModule(CharacterDataModule):
    """Targets that name their row, so a batch says which samples it holds."""

    def _load(self) -> None:
        super()._load()
        self.targets = np.arange(len(self.data), dtype=np.int64)


class RowRecorder(pl.LightningModule):
    """Trains nothing; records the rows of each training batch, by epoch, and writes them."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out
        self.w = torch.nn.Linear(1, 1)
        self.seen: dict[int, list[list[int]]] = {}

    def training_step(self, batch, batch_idx):
        x, rows = batch
        self.seen.setdefault(self.current_epoch, []).append(rows.tolist())
        return self.w(x.mean((1, 2, 3)).unsqueeze(1)).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

    def on_train_end(self) -> None:
        dm = self.trainer.datamodule
        record = {"device": str(dm.resident_device), "epochs": self.seen}
        Path(self.out, f"rank{self.global_rank}.json").write_text(json.dumps(record))


def main(out: str) -> None:
    out_dir = Path(out)
    cfg = compose_train(["trainer=ddp_sim"], out_dir / "run", out_dir / "cache")
    data = tiny_data(out_dir / "cache")
    for in_memory in (True, False):
        dm = RowDataModule(data, batch_size=BATCH, seed=3, in_memory=in_memory)
        dm.setup("fit")  # before the trainer exists, as train.py does
        tag = out_dir / ("resident" if in_memory else "streamed")
        tag.mkdir(parents=True)
        (tag / "train.json").write_text(json.dumps(dm.splits["train"].tolist()))
        trainer = instantiate(
            cfg.trainer,
            max_epochs=2,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            # as training adds it: without it a gloo rank can abort at exit
            callbacks=[ProcessGroupAtExit()],
        )
        trainer.fit(RowRecorder(str(tag)), datamodule=dm)


if __name__ == "__main__":
    main(sys.argv[1])
