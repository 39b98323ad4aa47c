"""Train the tiny source in this process and ``kill -9`` it on the way (run as a subprocess).

``python -m tests.crash <run dir> <cache dir> <kill> <override>...`` where ``<kill>`` is
``train:<epoch>:<batch>`` (SIGKILL after that training batch) or ``checkpoint:<n>`` (SIGKILL
halfway through writing the n-th checkpoint file, 1-based). The killing is patched in, not
configured, so the run's ``config.yaml`` is what a resume with the same overrides composes.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from lightning.pytorch import Callback

import tests.conftest as conftest  # registers the tiny source


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class KillAfterBatch(Callback):
    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            die()


def kill_in_checkpoint_write(n: int) -> None:
    """Make the n-th checkpoint write stop, killed, after half of its bytes."""
    import io

    import torch
    from lightning.fabric.plugins.io import torch_io

    calls = {"n": 0}
    save = torch_io._atomic_save

    def half_then_die(checkpoint, path) -> None:
        calls["n"] += 1
        if calls["n"] < n:
            return save(checkpoint, path)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        with open(path, "wb") as fh:
            fh.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            fh.flush()
        die()

    torch_io._atomic_save = half_then_die


def main(run_dir: str, cache_dir: str, kill: str, *overrides: str) -> None:
    from kanji_lab import train as train_module

    kind, *args = kill.split(":")
    if kind == "train":
        build = train_module.build_trainer

        def build_trainer(cfg):
            trainer = build(cfg)
            trainer.callbacks.append(KillAfterBatch(int(args[0]), int(args[1])))
            return trainer

        train_module.build_trainer = build_trainer
    elif kind == "checkpoint":
        kill_in_checkpoint_write(int(args[0]))
    else:
        raise SystemExit(f"unknown kill {kill!r}")
    train_module.train(conftest.compose_train(list(overrides), Path(run_dir), Path(cache_dir)))
    raise SystemExit("the run finished: it was never killed")


if __name__ == "__main__":
    main(*sys.argv[1:])
