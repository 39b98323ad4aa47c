"""One finished tiny training run shared by the deployment tests (trained once per session)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from kanji_lab.train import train
from tests.conftest import compose_train, tiny_overrides

# quantization=nf4 also writes model.nf4.safetensors at the end of fit
RUN_OVERRIDES = [*tiny_overrides(), "debug=limit", "quantization=nf4"]


@functools.cache
def deploy_run() -> tuple[Path, Path, dict]:
    """``(root, run_dir, metrics)``; ``root / "cache"`` holds the tiny data."""
    root = Path(tempfile.mkdtemp(prefix="kanji_lab_deploy_"))
    run = root / "run"
    metrics = train(compose_train(RUN_OVERRIDES, run, root / "cache"))
    return root, run, metrics
