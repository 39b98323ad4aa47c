"""Energy meters: what a stretch of work drew, from the best source this machine offers.

Each meter has ``start()`` and ``stop() -> joules`` and a ``method`` string that says how it
measures. :func:`best_cpu_meter` picks the CPU package counters (RAPL) when they are readable, else
an estimate from a configured power per busy core times the measured CPU time;
:func:`gpu_meter` reads NVML's energy counter (or integrates its power readings) for CUDA devices.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

RAPL_ROOT = Path("/sys/class/powercap")
PROC_STAT = Path("/proc/stat")


class Meter(Protocol):
    method: str

    def start(self) -> None: ...

    def stop(self) -> float: ...


class RaplMeter:
    """CPU package energy from the Linux powercap counters ``intel-rapl:N/energy_uj`` (the
    top-level package zones; their subzones are parts of them), with wrap-around."""

    def __init__(self, zones: list[Path]) -> None:
        self.zones = zones
        self.method = f"RAPL counters ({', '.join(z.name for z in zones)})"
        self._start: list[int] = []

    @staticmethod
    def find(root: Path = RAPL_ROOT) -> RaplMeter | None:
        """A meter over the top-level package zones, or None when none is readable (RAPL is often
        root-only since CVE-2020-8694, and absent in most VMs)."""
        zones = []
        for zone in sorted(root.glob("intel-rapl:*")):
            if zone.name.count(":") != 1:  # intel-rapl:0:0 etc. are parts of a package
                continue
            try:
                int((zone / "energy_uj").read_text())
            except (OSError, ValueError):
                continue
            zones.append(zone)
        return RaplMeter(zones) if zones else None

    def _read(self) -> list[int]:
        return [int((z / "energy_uj").read_text()) for z in self.zones]

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> float:
        total_uj = 0
        for zone, before, after in zip(self.zones, self._start, self._read(), strict=True):
            delta = after - before
            if delta < 0:  # the counter wrapped
                delta += int((zone / "max_energy_range_uj").read_text())
            total_uj += delta
        return total_uj / 1e6


def process_cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished child processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def system_cpu_seconds(stat: Path = PROC_STAT) -> float:
    """Busy CPU time of the whole machine, all cores, from ``/proc/stat``."""
    fields = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # guest time is already counted in user
    return busy / os.sysconf("SC_CLK_TCK")


class CpuTimeEstimate:
    """Energy estimated as ``watts_per_core x busy core-seconds``: the configured power of one fully
    busy core times the CPU time measured for this process (``scope=process``) or for the whole
    machine (``scope=system``, which includes other users' work)."""

    def __init__(self, watts_per_core: float, scope: str = "process") -> None:
        if scope not in ("process", "system"):
            raise ValueError(f"cpu scope must be 'process' or 'system', not {scope!r}")
        self.watts_per_core = float(watts_per_core)
        self.clock: Callable[[], float] = (
            process_cpu_seconds if scope == "process" else system_cpu_seconds
        )
        self.method = (
            f"estimate: {self.watts_per_core:g} W per busy core x measured CPU time ({scope}, "
            f"{'os.times' if scope == 'process' else '/proc/stat'})"
        )
        self.cpu_seconds = 0.0
        self._start = 0.0

    def start(self) -> None:
        self._start = self.clock()

    def stop(self) -> float:
        self.cpu_seconds = self.clock() - self._start
        return self.watts_per_core * self.cpu_seconds


def best_cpu_meter(watts_per_core: float, scope: str = "process", use_rapl: bool = True) -> Meter:
    """RAPL when readable (and allowed), else the CPU-time estimate."""
    rapl = RaplMeter.find() if use_rapl else None
    return rapl or CpuTimeEstimate(watts_per_core, scope)


class GpuMeter:
    """Energy of CUDA devices from NVML: the total-energy counter (Volta and newer), else power
    readings integrated over time by a sampling thread."""

    def __init__(self, indices: list[int], interval_s: float = 0.5) -> None:
        import pynvml  # nvidia-ml-py

        pynvml.nvmlInit()
        self.nvml = pynvml
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
        self.interval_s = interval_s
        try:
            for h in self.handles:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
            self.counter = True
            self.method = f"NVML energy counter (GPU {', '.join(map(str, indices))})"
        except pynvml.NVMLError:
            self.counter = False
            self.method = f"NVML power readings every {interval_s:g}s (GPU {indices})"
        self._start: list[int] = []
        self._joules = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _power_w(self) -> float:
        return sum(self.nvml.nvmlDeviceGetPowerUsage(h) for h in self.handles) / 1e3

    def _sample(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(self.interval_s):
            now = time.perf_counter()
            self._joules += self._power_w() * (now - last)
            last = now

    def start(self) -> None:
        if self.counter:
            self._start = [self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self.handles]
            return
        self._joules = 0.0
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        if self.counter:
            now = [self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self.handles]
            return sum(b - a for a, b in zip(self._start, now, strict=True)) / 1e3  # mJ -> J
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self._joules


def gpu_meter(indices: list[int]) -> Meter | None:
    """An NVML meter for these CUDA device indices, or None without NVML (``nvidia-ml-py``)."""
    if not indices:
        return None
    try:
        return GpuMeter(indices)
    except Exception:  # no pynvml, no driver, or NVML refused: report CPU energy only
        return None
