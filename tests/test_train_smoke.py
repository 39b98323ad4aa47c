"""End-to-end training on the tiny source: what a run must leave behind and compute."""

import csv
import json

import pytest
import torch

from kanji_lab.data.datamodule import EpochBatchSampler
from kanji_lab.deploy.weights import load_weights
from kanji_lab.train import train
from tests.conftest import TINY_CLASSES, compose_train, tiny_overrides


def test_fast_dev_run_leaves_a_loadable_run(tmp_path, tmp_cache):
    run = tmp_path / "run"
    metrics = train(compose_train([*tiny_overrides(), "debug=fdr"], run, tmp_cache))
    net, meta = load_weights(run / "model.safetensors")
    assert meta["arch"] == "cnn" and meta["labels"] == sorted(TINY_CLASSES)
    logits = net(torch.zeros(2, 1, 64, 64))
    assert logits.shape == (2, len(TINY_CLASSES)) and torch.isfinite(logits).all()
    assert json.loads((run / "labels.json").read_text())["labels"] == meta["labels"]
    written = json.loads((run / "metrics.json").read_text())
    assert written["num_classes"] == metrics["num_classes"] == 5
    assert written["parameters"] == sum(p.numel() for p in net.parameters())
    assert 0 <= written["test/acc"] <= 1


def test_resident_images_path_trains_like_the_streamed_one(tmp_path, tmp_cache):
    """Device-resident batches (perf.in_memory=true) and memory-mapped DataLoader batches: the
    same images and targets in the same order, so the same loss at every step (the first one
    exactly: same initial weights) and the same validation."""
    # no dropout: the DataLoader draws a seed from the global RNG, the resident path does not
    base = [*tiny_overrides(), "debug=limit", "augment=null", "model.net.dropout=0"]
    base.append("export.onnx=false")
    runs = {}
    for mode in ("true", "false"):
        run = tmp_path / mode
        overrides = [*base, f"perf.in_memory={mode}", "trainer.log_every_n_steps=1"]
        assert train(compose_train(overrides, run, tmp_cache))["epochs"] == 2
        with open(run / "csv" / "metrics.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        runs[mode] = [
            [float(r[key]) for r in rows if r.get(key)] for key in ("train/loss", "val/loss")
        ]
    (loss_r, val_r), (loss_s, val_s) = runs["true"], runs["false"]
    assert len(loss_r) == len(loss_s) >= 4 and len(val_r) == 2
    assert loss_r[0] == pytest.approx(loss_s[0], rel=1e-6)
    assert loss_r == pytest.approx(loss_s, rel=1e-3)
    assert val_r == pytest.approx(val_s, rel=1e-3)


def test_training_never_makes_a_batch_of_one_sample(tmp_path, tmp_cache):
    """30 training samples (6 of the 10 writers) in batches of 29: the 1-sample remainder joins
    the batch before it (a batch of one breaks the CNN's BatchNorm1d in training mode)."""
    sampler = EpochBatchSampler(30, 29, shuffle=True, seed=0, drop_last=False, min_last=2)
    assert [len(b) for b in sampler] == [30] and len(sampler) == 1
    assert sorted(i for b in sampler for i in b.tolist()) == list(range(30))
    overrides = [*tiny_overrides(), "batch_size=29", "trainer.max_epochs=1"]
    metrics = train(compose_train(overrides, tmp_path / "run", tmp_cache))
    assert metrics["epochs"] == 1
