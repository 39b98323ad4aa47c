"""``python -m kanji_lab.report``: table and plots from a multirun directory."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from kanji_lab.report import main, varying_keys, write_report


def _job(sweep, name, width, seed, acc=None, params=1000, train_s=10.0):
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    config = {
        "seed": seed,
        "paths": {"output_dir": str(job)},
        "trainer": {"default_root_dir": str(job), "max_epochs": 3},
        "model": {"arch": "cnn", "net": {"width": width, "blocks": [1, 2, 2]}},
    }
    OmegaConf.save(OmegaConf.create(config), job / "config.yaml")
    OmegaConf.save(
        OmegaConf.create([f"model.net.width={width}", f"seed={seed}"]),
        job / ".hydra/overrides.yaml",
    )
    if acc is not None:
        metrics = {
            "test/acc": acc,
            "test/acc_top5": min(1.0, acc + 0.1),
            "val/acc_best": acc,
            "parameters": params,
            "epochs": 3,
            "timings": {"train_s": train_s},
            "emissions": {"kwh": 2e-4, "kg_co2e": 1e-4, "method": "estimate"},
        }
        (job / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def sweep(tmp_path):
    sweep = tmp_path / "multiruns" / "2026-01-01_00-00-00"
    _job(sweep, "0", 16, 1, acc=0.50, params=1000, train_s=10)
    _job(sweep, "1", 16, 2, acc=0.52, params=1000, train_s=11)
    _job(sweep, "2", 32, 1, acc=0.70, params=4000, train_s=20)
    _job(sweep, "10", 32, 2)  # unfinished: no metrics.json
    return sweep


def test_report_writes_table_and_plots(sweep):
    out = write_report(sweep)
    rows = list(csv.DictReader(out["csv"].open()))
    assert [r["job"] for r in rows] == ["0", "1", "2", "10"]  # job order, not text order
    assert rows[2]["model.net.width"] == "32" and rows[2]["seed"] == "1"
    assert float(rows[2]["test/acc"]) == pytest.approx(0.70)
    assert float(rows[2]["emissions/kg_co2e"]) == pytest.approx(1e-4)
    assert rows[3]["status"] == "unfinished" and rows[3]["test/acc"] == ""
    md = out["markdown"].read_text()
    assert "| 2 | 1 | 32 | 70.00% |" in md
    # differ per job but say nothing about the experiment
    assert "paths.output_dir" not in md and "default_root_dir" not in md
    for name in ("acc_vs_params", "acc_vs_time"):
        assert out[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_varying_keys_are_the_swept_ones(sweep):
    from kanji_lab.report import load_jobs

    assert varying_keys(load_jobs(sweep)) == ["seed", "model.net.width"]


def test_bad_directory_is_one_clear_line(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no job directories with config.yaml" in capsys.readouterr().err


def test_command_line(sweep):
    done = subprocess.run(
        [sys.executable, "-m", "kanji_lab.report", str(sweep)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and (sweep / "report.md").is_file()


def test_slurm_launcher_config_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="extra 'slurm'")
    from hydra import compose, initialize_config_dir

    from kanji_lab.config import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
            return_hydra_config=True,
        )
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.partition == "gpu" and cfg.hydra.launcher.tasks_per_node == 1


@pytest.mark.slow
def test_optuna_sweep_optimises_the_returned_metric_and_reports(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="extra 'sweep'")
    from tests.test_config import _cli

    done = _cli(
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "debug=limit",
        'data.classes="亜唖"',
        "model.net.features=16",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "callbacks.progress_bar=null",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = next((tmp_path / "outputs" / "train" / "multiruns").iterdir())
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best.name == "optuna" and 0.0 <= best.best_value <= 1.0
    assert len(list(csv.DictReader(write_report(sweep)["csv"].open()))) == 2


def test_quick_throughput_run_leaves_the_readme_figures_alone(tmp_path, monkeypatch):
    import argparse
    import importlib

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "experiments"))
    results_io = importlib.import_module("results_io")
    bench = importlib.import_module("bench_throughput")
    readme = tmp_path / "experiments" / "README.md"
    readme.parent.mkdir()
    readme.write_text(
        "<!-- results:bench_throughput -->\nfull figures\n<!-- /results:bench_throughput -->\n"
    )
    monkeypatch.setattr(results_io, "ROOT", tmp_path)
    monkeypatch.setattr(results_io, "RESULTS", tmp_path / "results")
    models = bench.architectures()
    quick = argparse.Namespace(quick=True, samples=20_000, steps=6, models=models)
    partial = argparse.Namespace(quick=False, samples=bench.ETL9G_SAMPLES, steps=40, models=["cnn"])
    full = argparse.Namespace(quick=False, samples=bench.ETL9G_SAMPLES, steps=40, models=models)
    for args in (quick, partial):
        name, update = bench.destination(args)
        results_io.record(name, {"quick": True}, "quick figures", readme=update)
        assert name == "bench_throughput_quick" and "full figures" in readme.read_text()
    assert (tmp_path / "results" / "bench_throughput_quick.json").is_file()
    assert not (tmp_path / "results" / "bench_throughput.json").exists()
    name, update = bench.destination(full)
    results_io.record(name, {"quick": False}, "new full figures", readme=update)
    assert "new full figures" in readme.read_text()
