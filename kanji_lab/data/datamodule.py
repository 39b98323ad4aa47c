"""One LightningDataModule for every data source.

The source's cache is split by writer (:mod:`kanji_lab.data.splits`); batches are index batches
whose order depends only on the seed and the epoch (:class:`EpochBatchSampler`), so a resumed run
sees the batches it would have seen. Augmentation runs batched on the training device
(``on_after_batch_transfer``). Batches take one of two paths:

- streamed: a DataLoader gathers each batch from the memory-mapped cache on the host;
- resident (``perf.in_memory``; ``auto`` on a GPU when the images take at most half its free
  memory): every uint8 image is held on the training device and batches are row indices there
  (:class:`ResidentBatches`), so no image crosses from the host per step. The device is the
  trainer's (``trainer.strategy.root_device``), taken when Lightning sets the data up for ``fit``,
  ``validate``, ``test`` or ``predict``; a set-up without a trainer (e.g. to read the labels)
  holds nothing yet.

Under DDP each rank trains on its own shard of every epoch, on both paths: Lightning shards the
DataLoader; the resident path applies the same rule itself (the epoch's batches permuted by the
global seed plus the epoch, padded with their first batches to a multiple of the number of ranks
W, rank r taking batches r, r + W, ...), so both paths give each rank the same batches, disjoint
across ranks and together the whole training split (padding repeats at most W - 1 batches).
Evaluation loaders are sharded the same way without shuffling, prediction without padding.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset, Sampler

from kanji_lab.data import checks, radicals, sources
from kanji_lab.data.augment import BatchAugment
from kanji_lab.data.cache import CharacterSet, open_cache
from kanji_lab.data.charsets import ClassSetError, class_codes
from kanji_lab.data.splits import limit_train_writers, of_sources, split_indices, train_only
from kanji_lab.errors import DataSourceError

log = logging.getLogger(__name__)


class EpochBatchSampler(Sampler[np.ndarray]):
    """Yields index batches; the shuffle order depends only on (seed, epoch), so a resumed run
    sees the same batches it would have seen without the interruption.

    ``min_last``: a last batch smaller than this joins the batch before it (training uses 2: a
    batch of one sample breaks batch normalisation, e.g. ``BatchNorm1d`` in training mode)."""

    def __init__(
        self,
        size: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        min_last: int = 1,
    ):
        self.size, self.batch_size = size, batch_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.min_last = min_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _bounds(self) -> list[int]:
        whole, rest = divmod(self.size, self.batch_size)
        stops = [self.batch_size * (k + 1) for k in range(whole)]
        if rest and not self.drop_last:
            if rest < self.min_last and stops:
                stops[-1] = self.size  # too small alone: joins the batch before it
            else:
                stops.append(self.size)
        return stops

    def __len__(self) -> int:
        return len(self._bounds())

    def __iter__(self):
        order = (
            np.random.default_rng((self.seed, self.epoch)).permutation(self.size)
            if self.shuffle
            else np.arange(self.size)
        )
        start = 0
        for stop in self._bounds():
            yield order[start:stop]
            start = stop


class IndexedBatches(Dataset):
    """Gathers whole batches from the memory-mapped cache: ``dataset[index_array]`` returns
    ``(uint8 images (B, 64, 64), int64 targets (B,))``. Indices are read in sorted order, which
    keeps reads from the memory map sequential."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, indices: np.ndarray) -> None:
        self.images, self.targets, self.indices = images, targets, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.sort(self.indices[positions])
        return torch.from_numpy(self.images[rows]), torch.from_numpy(self.targets[rows])


class ResidentBatches:
    """Index batches for samples that live on the training device: each epoch's order (the same
    as :class:`EpochBatchSampler` gives the DataLoader path) is copied to the device once, and each
    step yields a slice of it, so no image crosses from the host during training.

    Lightning shards only DataLoaders, so under DDP this shards itself, exactly as Lightning shards
    the DataLoader path: it wraps the :class:`EpochBatchSampler` in a ``DistributedSamplerWrapper``
    that treats each batch as one item: with ``shard={"num_replicas": W, "rank": r, "shuffle": s,
    "seed": k}`` the epoch's batches are permuted by ``torch.randperm`` seeded with ``k + epoch``
    (training: ``s`` true, ``k`` the global seed), padded with their first batches to a multiple
    of ``W``, and rank ``r`` gets batches ``r, r + W, ...``; ``unrepeated=True`` (prediction)
    pads nothing, as Lightning does there.
    """

    batch_sampler = None  # Lightning reads ``sampler`` (for set_epoch) and this, as on a DataLoader

    def __init__(
        self,
        indices: np.ndarray,
        sampler: EpochBatchSampler,
        device: torch.device,
        shard: dict[str, int] | None = None,
        unrepeated: bool = False,
    ):
        self.indices, self.device = indices, device
        self.sampler: Sampler = sampler
        if shard and shard.get("num_replicas", 1) > 1:
            wrap = UnrepeatedDistributedSamplerWrapper if unrepeated else DistributedSamplerWrapper
            self.sampler = wrap(sampler, **shard)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        batches = [np.sort(self.indices[positions]) for positions in self.sampler]
        if not batches:
            return
        rows = torch.from_numpy(np.concatenate(batches)).to(self.device)
        start = 0
        for batch in batches:
            yield rows[start : start + len(batch)]
            start += len(batch)


class CharacterDataModule(pl.LightningDataModule):
    """Serves any configured source: builds its cache, splits by writer, batches, augments.

    ``labels`` fixes the vocabulary (index -> character); by default it is every character in the
    data, sorted. Samples whose character is outside the vocabulary get target -1.
    """

    def __init__(
        self,
        data: DictConfig | dict,
        batch_size: int = 256,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        augment: dict[str, Any] | None = None,
        labels: list[str] | None = None,
        seed: int = 0,
        in_memory: bool | str = "auto",
    ) -> None:
        """``in_memory``: keep every image on the training device and index batches there
        (True), stream batches from the memory-mapped cache (False), or decide by device
        ("auto": on a GPU when the images take at most half of its free memory)."""
        super().__init__()
        self.cfg = data if isinstance(data, DictConfig) else OmegaConf.create(data)
        radicals.use_cache_dir(self.cfg.get("cache_dir"))
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.augment = BatchAugment(**augment) if augment else None
        self.labels = list(labels) if labels is not None else None
        self.seed = seed
        self.in_memory = in_memory
        self.resident: tuple[torch.Tensor, torch.Tensor] | None = None
        self.resident_device: torch.device | None = None
        self.data: CharacterSet | None = None
        self.targets: np.ndarray | None = None
        self.splits: dict[str, np.ndarray] = {}

    def prepare_data(self) -> None:
        sources.build_cache(self.cfg, progress=True)

    def setup(self, stage: str | None = None) -> None:
        """Load the data (once), and when a trainer runs it (fit, validate, test or predict) keep
        the images on that trainer's device if ``in_memory`` says so. Called without a trainer
        (e.g. to read the labels before one exists) it only loads."""
        if self.data is None:
            self._load()
        if self.trainer is not None:
            self.place(self.trainer.strategy.root_device)

    def _load(self) -> None:
        self.data = open_cache(Path(sources.build_cache(self.cfg, progress=True)))
        if len(self.data) == 0:
            raise DataSourceError(f"data source {self.cfg.name!r} holds no samples")
        kept = self._kept_samples()
        if self.labels is None and kept is None:
            self.labels = self.data.characters
        elif self.labels is None:
            self.labels = [chr(c) for c in np.unique(self.data.codepoints[kept])]
        self.targets = encode_targets(self.data.codepoints, self.labels)
        split = self.cfg.get("split", {})
        self.splits = split_indices(
            self.data.writers,
            self.data.sources,
            val=split.get("val", 0.1),
            test=split.get("test", 0.1),
            seed=split.get("seed", 0),
            by=split.get("by", "writer"),
        )
        extra = of_sources(
            self.data.sources, self.data.source_names, self.data.info.get("train_only", [])
        )
        self.splits = train_only(self.splits, extra)
        if self.cfg.get("train_writers") is not None:
            self.splits = self._fewer_writers(self.cfg.train_writers, extra)
        self.splits["all"] = np.arange(len(self.data))
        if kept is not None:
            self.splits = {name: rows[kept[rows]] for name, rows in self.splits.items()}
        blank = checks.blank_counts(self.data.images, self.data.sources, self.data.source_names)
        for warning in checks.blank_warnings(blank):
            log.warning("%s", warning)
            self.data.info.setdefault("warnings", []).append(warning)
        counts = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        log.info("data %s: %d classes; samples: %s", self.cfg.name, len(self.labels), counts)

    def _fewer_writers(self, count: object, extra: np.ndarray) -> dict[str, np.ndarray]:
        """``data.train_writers``: the splits with ``count`` of the training writers."""
        if not isinstance(count, int) or isinstance(count, bool):
            raise DataSourceError(
                f"{self.cfg.name}: data.train_writers={count!r} is not a number of writers"
            )
        seed = self.cfg.get("split", {}).get("seed", 0)
        try:
            return limit_train_writers(self.splits, self.data.writers, count, seed, extra)
        except ValueError as error:
            raise DataSourceError(f"{self.cfg.name}: data.{error}") from None

    def _kept_samples(self) -> np.ndarray | None:
        """Which samples ``data.classes`` keeps (a boolean mask; None when it is unset); a spec
        that keeps none of the data's samples is an error naming what the data holds."""
        try:
            codes = class_codes(self.cfg.get("classes"))
        except ClassSetError as error:
            raise DataSourceError(str(error)) from None
        if codes is None:
            return None
        kept = np.isin(self.data.codepoints, codes)
        if not kept.any():
            held = "".join(self.data.characters[:40])
            raise DataSourceError(
                f"data.classes={self.cfg.classes} keeps none of the {len(self.data)} samples of "
                f"{self.cfg.name!r}, which holds {len(self.data.characters)} classes ({held}...); "
                "choose classes it has, or data.classes=null for all"
            )
        return kept

    def place(self, device: torch.device) -> None:
        """Hold the images and targets on ``device`` (moving them from where they are) when
        ``in_memory`` says so there, else stream them from the cache. ``resident_device`` records
        the device decided for (None: streamed)."""
        device = torch.device(device)
        if self.resident_device == device:
            return
        held = self.resident
        self.resident, self.resident_device = None, None
        if not self._keep_resident(device):
            return
        if held is None:
            held = (torch.from_numpy(np.array(self.data.images)), torch.from_numpy(self.targets))
        self.resident = (held[0].to(device), held[1].to(device))
        self.resident_device = device
        log.info("data %s: %d images held on %s", self.cfg.name, len(self.data), device)

    def __getstate__(self) -> dict[str, Any]:
        # spawned DDP ranks place their own copy on their own device in setup
        return {**self.__dict__, "resident": None, "resident_device": None}

    def _keep_resident(self, device: torch.device) -> bool:
        if self.in_memory != "auto":
            return bool(self.in_memory)
        if device.type != "cuda":
            return False
        free, _ = torch.cuda.mem_get_info(device)
        return self.data.images.nbytes <= free // 2

    @property
    def num_classes(self) -> int:
        return len(self.labels or [])

    def loader(
        self, split: str, shuffle: bool = False, resident: bool = True, unrepeated: bool = False
    ) -> DataLoader | ResidentBatches:
        """Batches of one split: ``train``, ``val``, ``test`` or ``all``: ``(uint8 images,
        targets)`` on the host, or row indices on the device when the images are held there
        (``resident=False`` always gives host batches, e.g. for calibration or evaluation).
        Without a trainer, ``in_memory=True`` holds the images on the CPU."""
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; choose from {', '.join(self.splits)}")
        indices = self.splits[split]
        if len(indices) == 0:
            raise DataSourceError(
                f"the {split} split of {self.cfg.name!r} is empty: the source has too few writers "
                f"for data.split fractions {OmegaConf.to_container(self.cfg.get('split', {}))}"
            )
        batch = self.batch_size if shuffle else self.eval_batch_size
        sampler = EpochBatchSampler(
            len(indices), batch, shuffle, self.seed, drop_last=False, min_last=2 if shuffle else 1
        )
        if resident and self.trainer is None and self.resident_device is None:
            self.place(torch.device("cpu"))
        if resident and self.resident is not None:
            shard = self._shard(train=shuffle)
            return ResidentBatches(indices, sampler, self.resident[0].device, shard, unrepeated)
        return DataLoader(
            IndexedBatches(self.data.images, self.targets, indices),
            batch_size=None,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _shard(self, train: bool) -> dict[str, Any] | None:
        """This rank's part under DDP, chosen as Lightning chooses it for a DataLoader (it leaves
        other iterables alone): for training it shuffles the batch order by the global seed
        (``PL_GLOBAL_SEED``) and the epoch, except with ``overfit_batches``. None: one process."""
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1:
            return None
        connector = getattr(trainer, "_accelerator_connector", None)
        if not getattr(connector, "use_distributed_sampler", True):
            return None
        kwargs = trainer.distributed_sampler_kwargs or {}
        return {
            "num_replicas": kwargs.get("num_replicas", trainer.world_size),
            "rank": kwargs.get("rank", trainer.global_rank),
            "shuffle": train and not trainer.overfit_batches,
            "seed": int(os.getenv("PL_GLOBAL_SEED", 0)),
        }

    def train_dataloader(self) -> DataLoader | ResidentBatches:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | ResidentBatches:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader | ResidentBatches:
        return self.loader("test")

    def predict_dataloader(self) -> DataLoader | ResidentBatches:
        """The test split, in order (each sample once, also under DDP)."""
        return self.loader("test", unrepeated=True)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, torch.Tensor):  # row indices into the resident images
            images, targets = self.resident[0][batch], self.resident[1][batch]
        else:
            images, targets = batch
        augment = self.augment if self.trainer is not None and self.trainer.training else None
        return model_input(images, augment), targets


def model_input(images: torch.Tensor, augment: BatchAugment | None = None) -> torch.Tensor:
    """uint8 ink-bright ``(B, 64, 64)`` -> the float ``(B, 1, 64, 64)`` in [-1, 1] models take;
    ``augment`` (training) works on the images in [0, 1], before the shift to [-1, 1]."""
    x = images.unsqueeze(1).float() / 255.0
    if augment is not None:
        x = augment(x)
    return x * 2.0 - 1.0


def encode_targets(codepoints: np.ndarray, labels: list[str]) -> np.ndarray:
    """Class index of each code point in ``labels``; -1 where the character is not a label."""
    vocab = np.array([ord(c) for c in labels], dtype=np.int64)
    order = np.argsort(vocab)
    sorted_vocab = vocab[order]
    codepoints = np.asarray(codepoints, dtype=np.int64)
    pos = np.clip(np.searchsorted(sorted_vocab, codepoints), 0, len(vocab) - 1)
    found = sorted_vocab[pos] == codepoints
    return np.where(found, order[pos], -1).astype(np.int64)
