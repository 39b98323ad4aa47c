"""experiments/cuda_check.py: without CUDA it says so and exits cleanly, writing nothing; its
checks run (on the CPU, CUDA-only ones skipped) in the dry run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "cuda_check.py"
RESULT = ROOT / "experiments" / "results" / "cuda_check.json"


def _run(*args, timeout=120):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU, even on a machine with one
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _stamp():
    return RESULT.stat().st_mtime_ns if RESULT.exists() else None


def test_without_cuda_it_says_so_and_exits_cleanly():
    before = _stamp()
    done = _run()
    assert done.returncode == 0, done.stderr
    assert "no CUDA device is visible" in done.stderr and "nothing was checked" in done.stderr
    assert "Traceback" not in done.stderr
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["cuda"] is False and line["checked"] == []
    assert _stamp() == before  # no results file written or overwritten


@pytest.mark.slow  # trains several small models, DDP over 2 CPU processes, a CLI run: minutes
def test_cpu_dry_run_runs_every_check_that_needs_no_cuda():
    before = _stamp()
    done = _run("--cpu-dry-run", timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    checks = summary["checks"]
    assert summary["ok"] and summary["cuda"] is False
    assert {k for k, c in checks.items() if c["ok"] is None} == {
        "bf16",
        "fused_adamw",
        "compile",
        "nvml",
    }
    assert {k for k, c in checks.items() if c["ok"]} == {
        "resident",
        "ddp",
        "bnb_4bit",
        "export",
        "cli",
    }
    assert checks["ddp"]["images_on"] == ["cpu", "cpu"]
    assert _stamp() == before


def _follows_float(monkeypatch):
    import importlib

    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    return importlib.import_module("cuda_check").follows_float


def test_4bit_logits_that_follow_the_float_ones_pass_though_a_near_tie_flips_every_top1(
    monkeypatch,
):
    # A briefly trained network predicts one class for every image; 4-bit moved the near-tie.
    import torch

    follows = _follows_float(monkeypatch)
    torch.manual_seed(0)
    want = torch.randn(40, 50)
    want[:, 0] += 10.0
    want[:, 1] = want[:, 0] - 1e-3
    got = want.clone()
    got[:, 1] += 2e-3
    figures = follows(got, want)
    assert figures["float_classes_predicted"] == 1
    assert figures["top1_agreement_with_float"] == 0.0
    assert figures["logit_cosine_with_float"] > 0.99 and figures["ok"]


def test_4bit_logits_unlike_the_float_ones_fail(monkeypatch):
    import torch

    follows = _follows_float(monkeypatch)
    torch.manual_seed(0)
    unrelated = follows(torch.randn(40, 50), torch.randn(40, 50))
    assert not unrelated["ok"] and unrelated["logit_cosine_with_float"] < 0.5
