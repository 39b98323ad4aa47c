"""A callback that simulates a run killed at the start of a given epoch."""

from lightning.pytorch import Callback


class Interrupted(RuntimeError):
    pass


class CrashAt(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise Interrupted(f"simulated kill at epoch {self.epoch}")
