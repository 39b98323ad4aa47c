"""Shared by the throughput benchmarks: a random data source of any size, a step timer."""

from __future__ import annotations

import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from omegaconf import OmegaConf

from kanji_lab.data import cache, cache_writer, sources
from kanji_lab.data.datamodule import CharacterDataModule

AUGMENT = {"rotate": 8.0, "scale": [0.85, 1.1], "shear": 0.15, "translate": 0.06, "thickness": 0.5}


@sources.register("bench")
def bench_source(cfg, progress: bool) -> Path:
    """Random ink images of ETL shape: content does not change the speed. Written in chunks so
    an ETL9G-sized set (607,200 images, 2.5 GB) never sits in memory twice."""
    folder = Path(cfg.cache_dir) / f"bench-{cfg.samples}-{cfg.num_classes}"
    fingerprint = {"n": cfg.samples, "classes": cfg.num_classes}
    if cache.is_complete(folder, fingerprint):
        return folder
    rng = np.random.default_rng(0)
    n = cfg.samples
    images = np.empty((n, 64, 64), np.uint8)
    for start in range(0, n, 50_000):
        chunk = images[start : start + 50_000]
        chunk[:] = (rng.random(chunk.shape, dtype=np.float32) > 0.85) * np.uint8(255)
    data = cache.CharacterSet(
        images=images,
        codepoints=0x4E00 + np.arange(n) % cfg.num_classes,
        writers=np.arange(n) // cfg.num_classes,
        sources=np.zeros(n),
        source_names=["bench"],
    )
    return cache_writer.write_cache(folder, data, fingerprint)


def bench_datamodule(
    cache_dir: str, classes: int, samples: int, batch: int, in_memory: bool | str = "auto"
) -> CharacterDataModule:
    """A DataModule over :func:`bench_source` with the default augmentation, set up."""
    data = OmegaConf.create(
        {
            "source": "bench",
            "name": "bench",
            "cache_dir": cache_dir,
            "samples": samples,
            "num_classes": classes,
            "split": {"by": "sample", "val": 0.02, "test": 0.02, "seed": 0},
        }
    )
    dm = CharacterDataModule(data, batch_size=batch, augment=AUGMENT, seed=0, in_memory=in_memory)
    dm.setup("fit")
    return dm


class StepTimer(pl.Callback):
    """Wall time and images from the end of warm-up step ``skip`` to the last step."""

    def __init__(self, skip: int) -> None:
        self.skip, self.start, self.end, self.images = skip, 0.0, 0.0, 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.skip:
            self.start = time.perf_counter()
        elif trainer.global_step > self.skip:
            self.images += len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch)
            self.end = time.perf_counter()

    @property
    def images_per_s(self) -> float:
        return self.images / max(self.end - self.start, 1e-9)


def quiet_trainer(**kwargs) -> pl.Trainer:
    """A Trainer that only trains: no logging, checkpoints, validation or progress bar."""
    return pl.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        **kwargs,
    )
