"""Both batch paths of the DataModule: memory-mapped DataLoader and device-resident indexing."""

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.trainer.connectors.data_connector import _get_distributed_sampler
from lightning.pytorch.utilities.data import _update_dataloader

from kanji_lab.data.datamodule import CharacterDataModule, ResidentBatches
from kanji_lab.models.module import CharacterClassifier
from tests.conftest import TINY_CLASSES, tiny_data


def _datamodule(cache_dir, in_memory):
    data = tiny_data(cache_dir)
    dm = CharacterDataModule(data, batch_size=7, seed=3, in_memory=in_memory)
    dm.setup("fit")
    return dm


def _epoch(dm, epoch):
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)  # what Lightning calls at each epoch start
    return [dm.on_after_batch_transfer(batch, 0) for batch in loader]


def test_resident_and_dataloader_paths_give_the_same_batches(tmp_path):
    streamed, resident = _datamodule(tmp_path, False), _datamodule(tmp_path, True)
    assert isinstance(resident.train_dataloader(), ResidentBatches)  # held on the CPU
    assert resident.resident is not None and streamed.resident is None
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


STAGES = ("fit", "validate", "test", "predict")
LOADERS = {"fit": "train", "validate": "val", "test": "test", "predict": "predict"}


def _cpu_trainer(device, callbacks=()):
    """A trainer on a CPU device object the test chooses: ``cpu:k`` is the CPU, but a device
    object distinct from the default ``cpu``, so the trainer's device can be told from it."""
    return pl.Trainer(
        strategy=SingleDeviceStrategy(device=device),
        accelerator="cpu",
        max_steps=2,
        limit_val_batches=1,
        limit_test_batches=1,
        limit_predict_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )


class _RecordPlacement(pl.Callback):
    """Records, as each stage starts, the trainer's device, the device the DataModule holds the
    images for, the images' device type and that of the first batch of the stage's loader."""

    def __init__(self):
        self.seen = {}

    def _record(self, trainer, stage):
        dm = trainer.datamodule
        loader = getattr(dm, f"{LOADERS[stage]}_dataloader")
        self.seen[stage] = (
            trainer.strategy.root_device,
            dm.resident_device,
            dm.resident[0].device.type if dm.resident else None,
            next(iter(loader())).device.type,
        )

    def on_fit_start(self, trainer, module):
        self._record(trainer, "fit")

    def on_validation_start(self, trainer, module):
        if not trainer.training and trainer.state.fn == "validate":
            self._record(trainer, "validate")

    def on_test_start(self, trainer, module):
        self._record(trainer, "test")

    def on_predict_start(self, trainer, module):
        self._record(trainer, "predict")


def test_resident_images_move_to_the_device_of_each_trainer_stage(tmp_path):
    # as train.py does: set up before any trainer exists (to read the labels), then fit etc.
    dm = _datamodule(tmp_path, True)
    assert dm.resident is None  # nothing held yet: the training device is not known
    model = CharacterClassifier("cnn", dm.labels, net={"width": 4, "features": 16})
    record = _RecordPlacement()
    devices = {stage: torch.device("cpu", k) for k, stage in enumerate(STAGES)}
    _cpu_trainer(devices["fit"], [record]).fit(model, datamodule=dm)
    _cpu_trainer(devices["validate"], [record]).validate(model, datamodule=dm)
    _cpu_trainer(devices["test"], [record]).test(model, datamodule=dm)
    predictions = _cpu_trainer(devices["predict"], [record]).predict(model, datamodule=dm)
    assert set(record.seen) == set(STAGES)
    for stage, (root, held_for, images, batch) in record.seen.items():
        assert root == devices[stage] and held_for == root, stage
        assert images == batch == root.type, stage
    assert len(predictions[0]) == min(len(dm.splits["test"]), dm.eval_batch_size)


def _row_targets(dm):
    """Targets that name their row, so batches say which samples they hold."""
    dm.targets = np.arange(len(dm.data), dtype=np.int64)
    return dm


def test_resident_shards_follow_the_dataloader_path_under_ddp(tmp_path):
    """Lightning shards the DataLoader path under DDP by wrapping its batch sampler (a
    DistributedSamplerWrapper that shuffles the batches of a training loader by seed + epoch);
    applied here as Lightning applies it, it gives each rank the same batches as the resident
    path's own sharding, epoch by epoch, padding included. (test_ddp checks it in real DDP.)"""
    dm = _row_targets(_datamodule(tmp_path, True))
    n = len(dm.splits["train"])
    # an odd number of batches, the last one short: one rank gets a padding batch
    dm.batch_size = next(b for b in range(5, n) if -(-n // b) % 2 == 1 and n % b)
    n_batches = len(dm.loader("train", shuffle=True, resident=False))
    train = set(dm.splits["train"].tolist())
    firsts = []
    for epoch in (0, 1):
        per_rank = []
        for rank in (0, 1):
            streamed = dm.loader("train", shuffle=True, resident=False)
            # what Lightning's _process_dataloader does with a training DataLoader
            sampler = _get_distributed_sampler(
                streamed, shuffle=True, overfit_batches=0, num_replicas=2, rank=rank, seed=11
            )
            streamed = _update_dataloader(streamed, sampler)
            plain = dm.loader("train", shuffle=True)
            shard = {"num_replicas": 2, "rank": rank, "shuffle": True, "seed": 11}
            resident = ResidentBatches(plain.indices, plain.sampler, plain.device, shard)
            for loader in (streamed, resident):  # what Lightning does at each epoch start
                _set_sampler_epoch(loader, epoch)
            a = [dm.on_after_batch_transfer(b, 0)[1].tolist() for b in streamed]
            b = [dm.on_after_batch_transfer(b, 0)[1].tolist() for b in resident]
            assert a == b and len(b) == (n_batches + 1) // 2
            per_rank.append(b)
        batches = [tuple(b) for rank in per_rank for b in rank]
        assert len(batches) == n_batches + 1 and len(set(batches)) == n_batches  # one padding
        rows = [r for b in set(batches) for r in b]
        assert sorted(rows) == sorted(train)  # together: every training sample once
        firsts.append(per_rank[0][0])
    assert firsts[0] != firsts[1]  # a new order each epoch
