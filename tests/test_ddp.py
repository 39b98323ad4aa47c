"""trainer=ddp_sim: two spawned CPU processes (gloo) train and test like one run."""

import json

import pytest

from kanji_lab.notebook import load_run
from kanji_lab.train import train
from tests.conftest import compose_train

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


@pytest.mark.slow
def test_ddp_sim_trains_and_tests_as_one_run(tmp_path, tmp_cache):
    run = tmp_path / "run"
    metrics = train(compose_train(OVERRIDES, run, tmp_cache))
    # one run directory: nothing written beside it, one CSV log, one set of checkpoints
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "run"]
    assert sorted(p.name for p in (run / "csv").iterdir()) == ["hparams.yaml", "metrics.csv"]
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["best.ckpt", "epoch000.ckpt", "epoch001.ckpt", "last.ckpt"]
    written = json.loads((run / "metrics.json").read_text())
    assert written["test/acc"] == pytest.approx(metrics["test/acc"])
    # metrics synced over both ranks: the logged test accuracy is that of the whole test split
    loaded = load_run(run)
    assert metrics["test/acc"] == pytest.approx(loaded.score("test")["top1"], abs=0.02)
    emissions = json.loads((run / "emissions.json").read_text())
    assert emissions["ranks"] == 2 and set(emissions["phases"]) == {"fit", "test"}
