"""Energy and carbon of a run: measured during fit and test, written to ``<run>/emissions.json``.

Energy comes from the best source available (see :mod:`kanji_lab.energy`), and the file
says which: RAPL package counters when readable, NVML for CUDA devices, else an estimate from a
configured power per busy core and the measured CPU time. Carbon is energy x PUE x grid intensity,
the intensity taken from :data:`GRID_INTENSITY` by region or given as a number.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch import Callback

from kanji_lab.atomic import write_json
from kanji_lab.energy import CpuTimeEstimate, Meter, best_cpu_meter, gpu_meter

log = logging.getLogger(__name__)

EMISSIONS_FILE = "emissions.json"
# Carbon intensity of electricity generation, kg CO2e per kWh, year 2021: Our World in Data
# (from Ember and the Energy Institute), as shipped by CodeCarbon in
# codecarbon/data/private_infra/global_energy_mix.json ("carbon_intensity", g/kWh).
GRID_SOURCE = (
    "Our World in Data, carbon intensity of electricity generation 2021, via CodeCarbon "
    "global_energy_mix.json"
)
GRID_INTENSITY = {
    "jp": 0.478545,  # Japan
    "kr": 0.458081,  # South Korea
    "in": 0.637182,  # India
    "au": 0.531247,  # Australia
    "it": 0.340794,  # Italy
    "ie": 0.363608,  # Ireland
    "at": 0.147573,  # Austria
    "be": 0.156922,  # Belgium
    "br": 0.158592,  # Brazil
    "is": 0.028557,  # Iceland
}
_JOULES_PER_KWH = 3.6e6


def grid_intensity(region: str | None, intensity: float | None) -> tuple[float, str]:
    """kg CO2e per kWh and where it came from: ``intensity`` when given, else the region's value."""
    if intensity is not None:
        return float(intensity), "configured"
    key = (region or "").lower()
    if key not in GRID_INTENSITY:
        raise ValueError(
            f"callbacks.carbon.region={region!r} is not in the table ({', '.join(GRID_INTENSITY)});"
            " set callbacks.carbon.intensity=<kg CO2e per kWh> instead"
        )
    return GRID_INTENSITY[key], GRID_SOURCE


def read_emissions(run_dir: Path) -> dict[str, Any] | None:
    """The ``emissions.json`` of a run directory, or None when the carbon callback was off."""
    path = Path(run_dir) / EMISSIONS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


class CarbonTracker(Callback):
    """Measures the energy of ``fit`` and ``test`` and writes ``emissions.json`` (rank 0).

    Every rank measures what is its own (its process CPU time, its GPU); machine-wide counters
    (RAPL, ``cpu_scope=system``) are read by the first rank of each machine only. The totals are
    summed over ranks, written by global rank 0 and logged to the run's loggers as ``carbon/*``.
    """

    def __init__(
        self,
        output_dir: str,
        region: str | None = "jp",
        intensity: float | None = None,
        pue: float = 1.0,
        cpu_watts_per_core: float = 10.0,
        cpu_scope: str = "process",
        rapl: bool = True,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.region = region
        self.intensity, self.intensity_source = grid_intensity(region, intensity)
        self.pue = float(pue)
        self.cpu_watts_per_core = cpu_watts_per_core
        self.cpu_scope = cpu_scope
        self.rapl = rapl
        self.result: dict[str, Any] | None = None
        self._meters: list[Meter] = []
        self._started = 0.0

    def _make_meters(self, trainer: pl.Trainer) -> list[Meter]:
        cpu = best_cpu_meter(self.cpu_watts_per_core, self.cpu_scope, self.rapl)
        machine_wide = not isinstance(cpu, CpuTimeEstimate) or self.cpu_scope == "system"
        meters = [] if machine_wide and trainer.local_rank != 0 else [cpu]
        device = trainer.strategy.root_device
        if device.type == "cuda":
            gpu = gpu_meter([device.index or 0])
            if gpu is not None:
                meters.append(gpu)
        return meters

    def _start(self, trainer: pl.Trainer, remake: bool = True) -> None:
        if remake or not self._meters:
            self._meters = self._make_meters(trainer)
        for meter in self._meters:
            meter.start()
        self._started = time.perf_counter()

    def _stop(self, trainer: pl.Trainer, phase: str, final: bool = True) -> None:
        """Add what the meters measured since they started to ``phase`` in the file; unless
        ``final``, start them again (the file then holds every finished epoch's energy, so a
        killed run loses only the epoch it was in)."""
        duration = time.perf_counter() - self._started
        joules = sum(meter.stop() for meter in self._meters)
        if not final:
            self._start(trainer, remake=False)
        total = trainer.strategy.reduce(
            torch.tensor(joules, dtype=torch.float64, device=trainer.strategy.root_device),
            reduce_op="sum",
        )
        if not trainer.is_global_zero:
            return
        methods = " + ".join(m.method for m in self._meters)
        self.result = self._record(phase, float(total), duration, methods, trainer.world_size)
        if not final:
            return
        metrics = {"carbon/kwh": self.result["kwh"], "carbon/kg_co2e": self.result["kg_co2e"]}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        log.info("energy %.3g kWh, %.3g kg CO2e (%s)", *metrics.values(), methods)

    def _record(
        self, phase: str, joules: float, duration: float, method: str, ranks: int
    ) -> dict[str, Any]:
        """Add to a phase of ``emissions.json`` (written atomically). The file, not this object,
        holds the totals: with ``ddp_spawn`` each fit/test runs in fresh processes, a resumed
        run adds to them, and each epoch's energy is in it as soon as the epoch ends."""
        path = self.output_dir / EMISSIONS_FILE
        phases = json.loads(path.read_text()).get("phases", {}) if path.is_file() else {}
        before = phases.get(phase, {"kwh": 0.0, "duration_s": 0.0})
        phases[phase] = {
            "kwh": before["kwh"] + joules / _JOULES_PER_KWH * self.pue,
            "duration_s": before["duration_s"] + duration,
        }
        kwh = sum(p["kwh"] for p in phases.values())
        result = {
            "kwh": kwh,
            "kg_co2e": kwh * self.intensity,
            "method": method,
            "duration_s": sum(p["duration_s"] for p in phases.values()),
            "region": None if self.intensity_source == "configured" else self.region,
            "intensity": self.intensity,
            "intensity_unit": "kg CO2e per kWh",
            "intensity_source": self.intensity_source,
            "pue": self.pue,
            "ranks": ranks,
            "phases": phases,
        }
        write_json(path, result)
        return result

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop(trainer, "fit", final=False)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop(trainer, "fit")

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start(trainer)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop(trainer, "test")
