"""Run directories: what a run leaves behind, and the checks that make resuming safe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"
# config sections that must match for a resumed run to continue the same experiment
_MUST_MATCH = ("data", "model", "augment", "batch_size", "seed")


class RunDirError(ValueError):
    """A run directory cannot be used as asked; the message says what to do instead."""


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def resume_checkpoint(cfg: DictConfig, run_dir: Path) -> str | None:
    """The checkpoint to resume from, or None for a fresh run.

    A fresh run refuses a directory that already holds checkpoints, so it never silently continues
    someone else's run. A resumed run requires ``last.ckpt`` and the same data and model config.
    """
    ckpt_dir = checkpoint_dir(run_dir)
    if not cfg.get("resume"):
        if any(ckpt_dir.glob("*.ckpt")):
            raise RunDirError(
                f"{run_dir} already holds checkpoints; to continue that run pass resume={run_dir}, "
                "otherwise pick another hydra.run.dir"
            )
        return None
    resume = Path(cfg.resume)
    if not resume.is_dir():
        raise RunDirError(f"resume={cfg.resume}: no such run directory")
    if not (resume / CONFIG_FILE).is_file() and not checkpoint_dir(resume).is_dir():
        # from the command line Hydra has already created the directory it was pointed at
        raise RunDirError(
            f"resume={cfg.resume}: not a training run directory (no {CONFIG_FILE}, no "
            f"{CHECKPOINTS}/last.ckpt); pass the directory of an earlier run, e.g. "
            "outputs/train/runs/<date>_<time>"
        )
    last = checkpoint_dir(resume) / "last.ckpt"
    if not last.is_file():
        found = sorted(p.name for p in checkpoint_dir(resume).glob("*.ckpt"))
        raise RunDirError(
            f"resume={cfg.resume}: {last} not found (checkpoints there: {found or 'none'}); "
            "a run can be resumed once it has finished at least one epoch"
        )
    _check_same_experiment(cfg, resume)
    return str(last)


def _check_same_experiment(cfg: DictConfig, run_dir: Path) -> None:
    saved_path = Path(run_dir) / CONFIG_FILE
    if not saved_path.is_file():
        return
    saved = OmegaConf.load(saved_path)
    current = OmegaConf.to_container(cfg, resolve=True)
    for key in _MUST_MATCH:
        before = OmegaConf.to_container(saved, resolve=True).get(key)
        if key in current and before != current[key]:
            raise RunDirError(
                f"resume={run_dir}: '{key}' differs from the original run; resume with the same "
                f"overrides as the original run (see {saved_path}). Original {key}: {before}"
            )


def save_config(cfg: DictConfig, run_dir: Path) -> Path:
    """Write the resolved config of the run."""
    path = Path(run_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, path, resolve=True)
    return path


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    return path
