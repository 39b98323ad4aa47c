"""Both batch paths of the DataModule: memory-mapped DataLoader and device-resident indexing."""

import numpy as np
import torch
from omegaconf import OmegaConf

from kanji_lab.data.datamodule import CharacterDataModule, ResidentBatches
from tests.conftest import TINY_CLASSES


def _datamodule(cache_dir, in_memory):
    data = OmegaConf.create(
        {
            "source": "tiny",
            "name": "tiny",
            "classes": TINY_CLASSES,
            "writers": 12,
            "seed": 0,
            "cache_dir": str(cache_dir),
            "split": {"by": "writer", "val": 0.1, "test": 0.1, "seed": 0},
        }
    )
    dm = CharacterDataModule(data, batch_size=7, seed=3, in_memory=in_memory)
    dm.setup("fit")
    return dm


def _epoch(dm, epoch):
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)  # what Lightning calls at each epoch start
    return [dm.on_after_batch_transfer(batch, 0) for batch in loader]


def test_resident_and_dataloader_paths_give_the_same_batches(tmp_path):
    streamed, resident = _datamodule(tmp_path, False), _datamodule(tmp_path, True)
    assert resident.resident is not None and streamed.resident is None
    assert isinstance(resident.train_dataloader(), ResidentBatches)
    for epoch in (0, 1):
        a, b = _epoch(streamed, epoch), _epoch(resident, epoch)
        assert len(a) == len(b) == len(streamed.train_dataloader())
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            torch.testing.assert_close(xa, xb)
            assert torch.equal(ya, yb)
    assert not torch.equal(_epoch(resident, 0)[0][1], _epoch(resident, 1)[0][1])


def test_auto_keeps_images_in_the_cache_on_cpu(tmp_path):
    dm = _datamodule(tmp_path, "auto")
    assert dm.resident is None
    images, targets = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape[1:] == (64, 64)
    x, y = dm.on_after_batch_transfer((images, targets), 0)
    assert x.shape == (len(y), 1, 64, 64) and x.min() >= -1 and x.max() <= 1
    assert np.isin(y.numpy(), np.arange(len(TINY_CLASSES))).all()
