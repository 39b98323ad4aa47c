"""``data.extra``: synthetic samples mixed into another source's training split only."""

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from kanji_lab.config import config_dir
from kanji_lab.data import cache_writer, sources
from kanji_lab.data.datamodule import CharacterDataModule
from kanji_lab.errors import DataSourceError
from tests.conftest import TINY_CLASSES


def _cfg(cache_dir, **extra):
    return OmegaConf.create(
        {
            "source": "tiny",
            "name": "tiny",
            "classes": TINY_CLASSES,
            "writers": 10,
            "seed": 0,
            "cache_dir": str(cache_dir),
            "split": {"by": "writer", "val": 0.2, "test": 0.2, "seed": 0},
            **extra,
        }
    )


def test_extra_synthetic_samples_join_training_only(tmp_path):
    dm = CharacterDataModule(_cfg(tmp_path, extra=["synthetic"], extra_below=None))
    dm.setup("fit")
    names = np.array(dm.data.source_names)[np.asarray(dm.data.sources)]
    synthetic = np.char.startswith(names.astype(str), "synthetic/")
    # every default synthetic writer writes each of the 5 classes (no kana among them)
    writers = OmegaConf.load(Path(config_dir()) / "data" / "synthetic.yaml").writers
    assert synthetic.sum() == sum(writers.values()) * len(TINY_CLASSES)
    assert dm.labels == sorted(TINY_CLASSES)  # same vocabulary, no new classes
    assert synthetic[dm.splits["train"]].sum() == synthetic.sum()
    assert not synthetic[dm.splits["val"]].any() and not synthetic[dm.splits["test"]].any()
    real_writers = set(np.asarray(dm.data.writers)[~synthetic].tolist())
    assert not real_writers & set(np.asarray(dm.data.writers)[synthetic].tolist())


def test_extra_only_for_classes_with_few_samples_and_cache_reused(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, extra=["synthetic"], extra_below=11)  # every tiny class has 10 samples
    first = sources.build_cache(cfg)
    assert first.name.startswith("mix-")
    monkeypatch.setattr(cache_writer, "write_cache", lambda *a, **k: pytest.fail("rebuilt"))
    assert sources.build_cache(cfg) == first
    monkeypatch.undo()
    enough = sources.build_cache(_cfg(tmp_path, extra=["synthetic"], extra_below=10))
    assert not enough.name.startswith("mix-")  # nothing below 10 samples: the plain cache


def test_unknown_extra_source_is_named(tmp_path):
    with pytest.raises(DataSourceError, match="no data config 'nope'"):
        sources.build_cache(_cfg(tmp_path, extra=["nope"], extra_below=None))


def test_fewer_training_writers_with_extra_keeps_every_extra_sample(tmp_path):
    dm = CharacterDataModule(_cfg(tmp_path, extra=["synthetic"], extra_below=None, train_writers=2))
    dm.setup("fit")
    names = np.array(dm.data.source_names)[np.asarray(dm.data.sources)]
    synthetic = np.char.startswith(names.astype(str), "synthetic/")
    train = dm.splits["train"]
    assert len(np.unique(np.asarray(dm.data.writers)[train[~synthetic[train]]])) == 2
    assert synthetic[train].sum() == synthetic.sum()


@pytest.mark.parametrize(("count", "message"), [(99, "choose 1 to 6"), ("many", "not a number")])
def test_bad_train_writers_names_the_source_and_the_range(tmp_path, count, message):
    dm = CharacterDataModule(_cfg(tmp_path, train_writers=count))
    with pytest.raises(DataSourceError, match=f"tiny: data.train_writers=.*{message}"):
        dm.setup("fit")
