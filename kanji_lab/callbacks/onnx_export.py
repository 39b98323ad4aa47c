"""``callbacks.onnx_export``: which deployment files a training run writes beyond its weights.

The callback only carries the settings; ``train`` writes every deployment file in one place
(:func:`kanji_lab.deploy.run_files.write_run_files`), on rank 0 after fit, from the best weights:
``model.onnx`` and ``model.int8.onnx`` (plus ``model.<type>.safetensors`` for each ``bnb`` type),
with their checks. ``callbacks.onnx_export=null`` writes ``model.safetensors`` alone.
"""

from __future__ import annotations

import lightning.pytorch as pl

from kanji_lab.deploy.pipeline import ExportSettings


class OnnxExport(pl.Callback):
    """Export settings of a training run (see the module docstring)."""

    def __init__(
        self,
        dirpath: str,
        opset: int | None = None,
        int8: bool = True,
        calibration_batches: int = 8,
        min_agreement: float = 0.9,
        bnb: list[str] | str | None = None,
    ) -> None:
        self.dirpath = dirpath
        bnb_types = [bnb] if isinstance(bnb, str) else list(bnb or [])
        self.settings = ExportSettings(opset, int8, calibration_batches, min_agreement, bnb_types)


def export_settings(trainer: pl.Trainer) -> ExportSettings | None:
    """The settings of the trainer's :class:`OnnxExport` callback, None when there is none."""
    found = [cb.settings for cb in trainer.callbacks if isinstance(cb, OnnxExport)]
    return found[0] if found else None
