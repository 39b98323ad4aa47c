"""Weights & Biases for kanji_lab runs: works without an account or a network.

``logger=wandb`` (or ``logger=many``) builds the logger through :func:`wandb_logger`:

- mode: ``WANDB_MODE`` when set (``online``, ``offline``, ``disabled``), else ``online`` when an
  API key is configured (``WANDB_API_KEY`` or a ``wandb login`` entry in ``~/.netrc``), else
  ``offline``;
- files: inside the run directory (``<run>/wandb/``), so a run directory holds everything;
- config: the run's resolved ``config.yaml`` is attached when the W&B run starts;
- id: kept in ``<run>/wandb/run_id``, so a run resumed into its directory (``resume=<run>``)
  continues the same W&B run instead of starting another.

:func:`finish_wandb` attaches the final metrics (``metrics.json``) to the run's summary and calls
``wandb.finish()``, so each job of a multirun is its own W&B run. Upload an offline run later with
``wandb sync <run>/wandb/offline-run-*``.
"""

from __future__ import annotations

import netrc
import os
import secrets
import string
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import OmegaConf

from kanji_lab.atomic import write_text

DEFAULT_HOST = "https://api.wandb.ai"
RUN_ID_FILE = "run_id"


def has_api_key(env: Mapping[str, str] | None = None) -> bool:
    """Whether W&B credentials are configured: ``WANDB_API_KEY`` or a netrc entry for the host."""
    env = os.environ if env is None else env
    if env.get("WANDB_API_KEY"):
        return True
    host = urlparse(env.get("WANDB_BASE_URL", DEFAULT_HOST)).hostname
    path = Path(env.get("NETRC", Path.home() / ".netrc"))
    try:
        return bool(path.is_file() and netrc.netrc(path).authenticators(host or ""))
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(env: Mapping[str, str] | None = None) -> str:
    """``WANDB_MODE`` when set, else ``online`` with credentials and ``offline`` without."""
    env = os.environ if env is None else env
    return env.get("WANDB_MODE") or ("online" if has_api_key(env) else "offline")


def wandb_logger(
    save_dir: str,
    project: str = "kanji_lab",
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    mode: str | None = None,
    config_file: str | None = None,
    log_model: bool | str = False,
    **kwargs: Any,
) -> WandbLogger:
    """A Lightning ``WandbLogger`` writing under ``save_dir`` in the mode chosen above (``mode``
    overrides), with ``config_file`` (the run's resolved config) attached as the W&B config."""
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    kwargs.setdefault("id", run_id(save_dir))
    kwargs.setdefault("resume", "allow")
    config = None
    if config_file and Path(config_file).is_file():
        config = OmegaConf.to_container(OmegaConf.load(config_file), resolve=True)
    return WandbLogger(
        save_dir=save_dir,
        dir=save_dir,
        project=project,
        name=name,
        group=group,
        tags=list(tags) if tags else None,
        mode=mode or wandb_mode(),
        config=config,
        log_model=log_model,
        **kwargs,
    )


def run_id(save_dir: str | Path) -> str:
    """The W&B run id of the run directory ``save_dir``: made and stored on first use
    (``<save_dir>/wandb/run_id``), read back by a resumed run."""
    path = Path(save_dir) / "wandb" / RUN_ID_FILE
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    alphabet = string.ascii_lowercase + string.digits
    value = "".join(secrets.choice(alphabet) for _ in range(8))  # W&B's own id format
    write_text(path, value + "\n")
    return value


def flat_numbers(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Numbers and strings of a nested dict, keys joined with ``/`` (``timings/train_s``)."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flat_numbers(value, f"{name}/"))
        elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
            flat[name] = value
    return flat


def finish_wandb(loggers: Iterable[Logger], metrics: Mapping[str, Any] | None = None) -> None:
    """Attach ``metrics`` to each live W&B run's summary and finish it (rank 0, in the process
    that started the run; with ``ddp_spawn`` the spawned rank 0 finished it already)."""
    wandb = sys.modules.get("wandb")
    if wandb is None:  # never imported: no W&B logger ran in this process
        return
    for logger in loggers:
        run = getattr(logger, "_experiment", None) if isinstance(logger, WandbLogger) else None
        if run is not None and metrics:
            run.summary.update(flat_numbers(metrics))
    if wandb.run is not None:
        wandb.finish()
