import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kanji_lab.run_dir import RunDirError
from kanji_lab.train import train
from tests.conftest import compose_train, tiny_overrides

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = ["trainer.max_epochs=3", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]
BASE = [*tiny_overrides(), *EPOCHS]


def _ckpt(run_dir, name="last.ckpt"):
    return torch.load(run_dir / "checkpoints" / name, weights_only=True)


def _rows(run_dir):
    with open(run_dir / "csv" / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _killed(run_dir, cache, kill):
    """Train in a subprocess that SIGKILLs itself as ``kill`` says (see tests/crash.py)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, "-m", "tests.crash", str(run_dir), str(cache), kill, *BASE]
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    root = tmp_path_factory.mktemp("straight")
    train(compose_train(BASE, root / "run", root / "cache"))
    return root / "run"


def _assert_same_run(run, reference):
    """Same steps, optimizer, schedule and weights as the uninterrupted run, and the same
    metric history: every row, none twice."""
    after, ref = _ckpt(run), _ckpt(reference)
    assert after["global_step"] == ref["global_step"]
    opt_after = after["optimizer_states"][0]["state"]
    opt_ref = ref["optimizer_states"][0]["state"]
    assert opt_after[0]["step"] == opt_ref[0]["step"]
    assert after["lr_schedulers"][0]["last_epoch"] == ref["lr_schedulers"][0]["last_epoch"]
    # same batches, same augmentation draws, same optimizer state: the same weights
    for key, value in ref["state_dict"].items():
        torch.testing.assert_close(after["state_dict"][key], value, rtol=1e-4, atol=1e-5)
    assert (
        after["state_dict"]["val_acc_best.max_value"] == ref["state_dict"]["val_acc_best.max_value"]
    )
    rows, ref_rows = _rows(run), _rows(reference)
    filled = [sorted((k, r["step"], r["epoch"]) for k, v in r.items() if v) for r in rows]
    ref_filled = [sorted((k, r["step"], r["epoch"]) for k, v in r.items() if v) for r in ref_rows]
    assert sorted(filled) == sorted(ref_filled)
    val = [float(r["val/acc"]) for r in rows if r.get("val/acc")]
    ref_val = [float(r["val/acc"]) for r in ref_rows if r.get("val/acc")]
    assert val == pytest.approx(ref_val, abs=1e-6) and len(val) == 3


def test_run_killed_during_training_resumes_with_its_history(tmp_path, straight):
    run, cache = tmp_path / "run", tmp_path / "cache"
    _killed(run, cache, "train:1:1")  # kill -9 in the middle of epoch 1 (of 0..2)
    assert _ckpt(run)["epoch"] == 0
    emissions = json.loads((run / "emissions.json").read_text())
    assert emissions["phases"]["fit"]["kwh"] > 0, "epoch 0's energy is on disk before the kill"

    metrics = train(compose_train([*BASE, f"resume={run}"], run, cache))
    assert metrics["epochs"] == 3
    _assert_same_run(run, straight)
    resumed = json.loads((run / "emissions.json").read_text())["phases"]["fit"]
    assert resumed["kwh"] > emissions["phases"]["fit"]["kwh"], "the killed part is kept"


def test_run_killed_while_writing_a_checkpoint_resumes(tmp_path, straight):
    run, cache = tmp_path / "run", tmp_path / "cache"
    _killed(run, cache, "checkpoint:4")  # epoch 0 writes 3 files; the 4th is epoch 1's first
    ckpts = run / "checkpoints"
    half = [p for p in ckpts.iterdir() if ".tmp" in p.name]
    assert len(half) == 1, sorted(p.name for p in ckpts.iterdir())
    for path in ckpts.glob("*.ckpt"):  # every named checkpoint is whole
        torch.load(path, weights_only=True)
    assert _ckpt(run)["epoch"] == 0

    train(compose_train([*BASE, f"resume={run}"], run, cache))
    assert not [p for p in ckpts.iterdir() if ".tmp" in p.name], "stale temporary removed"
    _assert_same_run(run, straight)


def test_resume_refuses_what_changes_the_result_and_names_the_key(tmp_path, tmp_cache):
    run = tmp_path / "run"
    base = [*tiny_overrides(), "debug=limit", "trainer.max_epochs=1"]
    train(compose_train(base, run, tmp_cache))
    changed = {
        "trainer.max_epochs=3": "trainer.max_epochs",
        "quantization=qat": "quantization",
        "callbacks.early_stopping.patience=1": "callbacks.early_stopping.patience",
        "model.net.width=16": "model.net.width",
    }
    for override, key in changed.items():
        cfg = compose_train([*base, override, f"resume={run}"], run, tmp_cache)
        with pytest.raises(RunDirError, match=f"'{key}[.' ]"):
            train(cfg)
    # what only changes what is shown or logged may differ
    allowed = [
        "logger=many",
        "callbacks.lr_monitor=null",
        "trainer.log_every_n_steps=1",
    ]
    from kanji_lab.run_dir import resume_checkpoint

    cfg = compose_train([*base, *allowed, f"resume={run}"], run, tmp_cache)
    assert resume_checkpoint(cfg, run) == str(run / "checkpoints" / "last.ckpt")


def test_fresh_run_refuses_a_directory_with_checkpoints(tmp_path, tmp_cache):
    run = tmp_path / "run"
    cfg = compose_train([*tiny_overrides(), "debug=limit", "trainer.max_epochs=1"], run, tmp_cache)
    train(cfg)
    with pytest.raises(RunDirError, match="resume="):
        train(cfg)


def test_resume_errors_name_the_problem(tmp_path, tmp_cache):
    missing = tmp_path / "nope"
    cfg = compose_train([*tiny_overrides(), f"resume={missing}"], missing, tmp_cache)
    with pytest.raises(RunDirError, match="no such run directory"):
        train(cfg)
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = compose_train([*tiny_overrides(), f"resume={empty}"], empty, tmp_cache)
    with pytest.raises(RunDirError, match="last.ckpt"):
        train(cfg)


def test_checkpoints_load_with_weights_only(tmp_path, tmp_cache):
    run = tmp_path / "run"
    train(compose_train([*tiny_overrides(), "debug=limit"], run, tmp_cache))
    names = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    assert {"best.ckpt", "last.ckpt", "epoch001.ckpt"} <= set(names)
    for name in names:
        ckpt = torch.load(run / "checkpoints" / name, weights_only=True)
        assert ckpt["hyper_parameters"]["labels"] == sorted("亜唖娃阿哀")
    assert not list((run / "checkpoints").glob(".*tmp*"))
