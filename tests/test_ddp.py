"""trainer=ddp_sim: two spawned CPU processes (gloo) train and test like one run.

The job runs as a user runs it, ``python -m kanji_lab`` in a fresh process: the ranks it spawns
then start from a clean interpreter, not from the pytest process, which by this point of the
suite holds what earlier tests left (inductor compile workers, Jupyter kernel sockets and
threads, loaded native libraries) and which the spawned ranks' rendezvous must not depend on.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kanji_lab.notebook import load_run

# the synthetic source (spawned ranks rebuild the data from its cache; the tests' tiny source is
# registered in this process only), cut to a few classes
OVERRIDES = [
    'data.classes="亜唖娃阿哀"',
    "trainer=ddp_sim",
    "debug=limit",
    "model.net.width=8",
    "model.net.features=32",
    "batch_size=32",
    "eval_batch_size=32",
    "callbacks.progress_bar=null",
]
ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    """This environment with the checkout first on the path of a fresh interpreter."""
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@pytest.mark.slow
def test_ddp_sim_trains_and_tests_as_one_run(tmp_path, tmp_cache):
    run = tmp_path / "run"
    args = [*OVERRIDES, f"hydra.run.dir={run}", f"paths.cache_dir={tmp_cache}"]
    done = subprocess.run(
        [sys.executable, "-m", "kanji_lab", *args],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    metrics = json.loads((run / "metrics.json").read_text())
    # one run directory: nothing written beside it, one CSV log, one set of checkpoints
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "run"]
    assert sorted(p.name for p in (run / "csv").iterdir()) == ["hparams.yaml", "metrics.csv"]
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["best.ckpt", "epoch000.ckpt", "epoch001.ckpt", "last.ckpt"]
    assert (run / "model.safetensors").is_file() and (run / "model.onnx").is_file()
    # metrics synced over both ranks: the logged test accuracy is that of the whole test split
    loaded = load_run(run)
    assert metrics["test/acc"] == pytest.approx(loaded.score("test")["top1"], abs=0.02)
    emissions = json.loads((run / "emissions.json").read_text())
    assert emissions["ranks"] == 2 and set(emissions["phases"]) == {"fit", "test"}


@pytest.mark.slow  # two fits of two spawned processes each: ~50 s on 2 busy cores
def test_ddp_sim_ranks_train_on_disjoint_shards_that_cover_the_split(tmp_path):
    """Under trainer=ddp_sim each rank trains on its own batches, which together hold every
    training sample once per epoch, in a new order each epoch; the resident path (which Lightning
    does not shard) gives each rank the very batches the DataLoader path gives it. Run in a fresh
    interpreter: DDP leaves process-wide state (environment, process group) behind."""
    code = f"from tests.ddp_shards import main; main({str(tmp_path)!r})"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = {}
    for path in ("resident", "streamed"):
        train = set(json.loads((tmp_path / path / "train.json").read_text()))
        ranks = [json.loads((tmp_path / path / f"rank{r}.json").read_text()) for r in (0, 1)]
        assert [r["device"] for r in ranks] == (
            ["cpu", "cpu"] if path == "resident" else ["None"] * 2
        )
        for epoch in ("0", "1"):
            rows = [[row for batch in r["epochs"][epoch] for row in batch] for r in ranks]
            assert not set(rows[0]) & set(rows[1]), (path, epoch)
            assert sorted(rows[0] + rows[1]) == sorted(train), (path, epoch)
        assert ranks[0]["epochs"]["0"] != ranks[0]["epochs"]["1"]
        runs[path] = [r["epochs"] for r in ranks]
    assert runs["resident"] == runs["streamed"]


@pytest.mark.slow  # 12 spawns of two ranks: ~60 s
def test_gloo_ranks_close_their_process_group_before_exit():
    """Without the exit hook about one two-rank gloo spawn in four lost a rank to SIGABRT at
    interpreter shutdown (after its work was done); 12 clean runs rule that out at p < 0.04."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "gloo_exit.py"), "12"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "lost 0 of 12", done.stderr[-3000:]


def test_the_callback_registers_the_exit_hook_once_a_group_exists(monkeypatch):
    from kanji_lab.callbacks import process_group as callback

    calls = []
    monkeypatch.setattr(callback, "destroy_process_group_at_exit", lambda: calls.append(1))
    monkeypatch.setattr(callback.dist, "is_initialized", lambda: False)
    callback.ProcessGroupAtExit().setup(None, None, "fit")
    assert calls == []
    monkeypatch.setattr(callback.dist, "is_initialized", lambda: True)
    callback.ProcessGroupAtExit().setup(None, None, "fit")
    assert calls == [1]
