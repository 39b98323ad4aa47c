"""Run directories: what a run leaves behind, and the checks that make resuming safe.

``python -m kanji_lab <the same overrides> resume=<run dir>`` continues a run in its own directory
from ``checkpoints/last.ckpt``: epoch, optimizer, LR schedule, random generators, best metric,
early-stopping counter and the batch order (shuffling depends only on seed and epoch), so an
interrupted and resumed run ends with the weights of an uninterrupted one.

Kept: every row of ``csv/metrics.csv`` up to the checkpoint it continues from (rows logged after it
are dropped and logged again, :mod:`kanji_lab.loggers`), the same W&B run (its id in
``wandb/run_id``), the energy of every finished epoch (``emissions.json`` is updated at each epoch
end), the checkpoints and ``config.yaml``. Lost: the part of the epoch the run was killed in. Every
file is written under a temporary name and renamed (:mod:`kanji_lab.atomic`), and the temporaries a
killed process left are removed when the run starts again.

A resume is refused, naming the key, when anything that changes the result differs from the
original ``config.yaml`` (the sections in ``_MUST_MATCH``: data, model, augmentation, batch size,
seed, quantization, trainer settings such as ``trainer.max_epochs``, which rescales the LR
schedule, and callbacks); what only changes what is shown, logged or exported may differ
(``_MAY_DIFFER``). A fresh run refuses a directory that already holds checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from kanji_lab.atomic import remove_stale, write_text
from kanji_lab.errors import RunDirError

CONFIG_FILE = "config.yaml"
CHECKPOINTS = "checkpoints"
# config sections that must match for a resumed run to continue the same experiment: everything
# that changes what is trained (trainer.max_epochs rescales the LR schedule, quantization=qat
# trains fake-quantized, a callback can stop early or reset the best checkpoint) ...
_MUST_MATCH = (
    "data",
    "model",
    "augment",
    "batch_size",
    "seed",
    "quantization",
    "trainer",
    "callbacks",
)
# ... except these keys, which change what is shown, logged or exported, not the weights
_MAY_DIFFER = {
    "data": {"cache_dir", "workers"},
    "trainer": {
        "default_root_dir",
        "log_every_n_steps",
        "enable_model_summary",
        "enable_progress_bar",
        "profiler",
    },
    "callbacks": {"progress_bar", "lr_monitor", "carbon", "onnx_export"},
}
_ABSENT = "<not set>"


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
    """RunDirError naming the first key (``trainer.max_epochs``) that differs from the run's."""
    saved_path = Path(run_dir) / CONFIG_FILE
    if not saved_path.is_file():
        return
    saved = OmegaConf.to_container(OmegaConf.load(saved_path), resolve=True)
    current = OmegaConf.to_container(cfg, resolve=True)
    for section in _MUST_MATCH:
        before, now = saved.get(section, _ABSENT), current.get(section, _ABSENT)
        for key, was, is_now in differences(before, now, section):
            part = key.split(".")[1] if "." in key else None
            if part in _MAY_DIFFER.get(section, set()):
                continue
            raise RunDirError(
                f"resume={run_dir}: '{key}' differs from the original run ({was!r} then, "
                f"{is_now!r} now), which changes what is trained; resume with the same overrides "
                f"as the original run (see {saved_path}) or start a new run"
            )


def differences(before: Any, now: Any, prefix: str) -> list[tuple[str, Any, Any]]:
    """``(dotted key, before, now)`` for each leaf that differs between two nested configs."""
    if isinstance(before, dict) and isinstance(now, dict):
        found = []
        for key in sorted(set(before) | set(now), key=str):
            a, b = before.get(key, _ABSENT), now.get(key, _ABSENT)
            found += differences(a, b, f"{prefix}.{key}")
        return found
    return [] if before == now else [(prefix, before, now)]


def checkpoint_step(path: str | Path) -> int:
    """The global step a checkpoint was taken at."""
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])


def save_config(cfg: DictConfig, run_dir: Path) -> Path:
    """Write the resolved config of the run."""
    return write_text(Path(run_dir) / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete what a killed earlier process of this run left half-written (checkpoints, JSON)."""
    return [*remove_stale(run_dir), *remove_stale(checkpoint_dir(run_dir))]
