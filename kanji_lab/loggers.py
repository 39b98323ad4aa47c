"""The CSV logger of a run (``<run>/csv/metrics.csv``), which a resumed run continues.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it opens its folder ("Previous
log files in this directory will be deleted"), so a run resumed into its own directory would keep
only the epochs after the resume. This one keeps the rows, writes the file atomically (the whole
table, through :mod:`kanji_lab.atomic`) and, on resume, drops the rows logged after the checkpoint
the run continues from (they are logged again): the file ends as that of an uninterrupted run.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from kanji_lab.atomic import write_text


class KeepingWriter(ExperimentWriter):
    """Lightning's CSV experiment writer, keeping the rows already in ``metrics.csv``."""

    def _check_log_dir_exists(self) -> None:  # Lightning's deletes metrics.csv here
        pass

    def rows(self) -> list[dict[str, Any]]:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return []
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))

    def save(self) -> None:
        if not self.metrics:
            return
        self._write([*self.rows(), *self.metrics])
        self.metrics = []

    def drop_from_step(self, step: int) -> int:
        """Remove the rows logged at ``step`` or later; returns how many there were."""
        rows = self.rows()
        kept = [r for r in rows if r.get("step") in (None, "") or float(r["step"]) < step]
        if len(kept) != len(rows):
            self._write(kept)
        return len(rows) - len(kept)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        self.metrics_keys = sorted(set().union(*rows)) if rows else []
        buffer = io.StringIO()
        table = csv.DictWriter(buffer, fieldnames=self.metrics_keys)
        table.writeheader()
        table.writerows(rows)
        write_text(Path(self.metrics_file_path), buffer.getvalue())


class CSVLogger(LightningCSVLogger):
    """``lightning.pytorch.loggers.CSVLogger`` whose ``metrics.csv`` survives a resume."""

    @property
    @rank_zero_experiment
    def experiment(self) -> KeepingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = KeepingWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def resume_at(self, step: int) -> None:
        """The run continues from a checkpoint taken at global step ``step``: forget what was
        logged after it (the interrupted epoch), keep everything before."""
        self.experiment.drop_from_step(step)
