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


def cuda_identity(index: int) -> dict[str, str]:
    """What CUDA says device ``index`` (an ordinal of this process) is: its NVML-style UUID
    (``GPU-...``) and PCI bus id (``00000000:3B:00.0``); empty without CUDA."""
    try:
        import torch

        if not torch.cuda.is_available():
            return {}
        props = torch.cuda.get_device_properties(index)
    except Exception:  # no CUDA build, no driver, no such device
        return {}
    identity = {}
    uuid = str(getattr(props, "uuid", "") or "")
    if uuid:
        identity["uuid"] = uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
    if getattr(props, "pci_bus_id", None) is not None:
        domain, bus = getattr(props, "pci_domain_id", 0), props.pci_bus_id
        device = getattr(props, "pci_device_id", 0)
        identity["pci_bus_id"] = f"{domain:08X}:{bus:02X}:{device:02X}.0"
    return identity


def nvml_handle(nvml, index: int, identity: dict[str, str] | None = None, env=None):
    """The NVML handle of CUDA device ``index`` and how it was found.

    The CUDA ordinal is no NVML index: CUDA numbers only the devices in ``CUDA_VISIBLE_DEVICES``,
    in that order (and, unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, fastest first), while NVML numbers
    every GPU of the machine by PCI bus. So, in order: the device's UUID, then its PCI bus id, as
    CUDA reports them (``identity``, by default :func:`cuda_identity`); then the ``index``-th entry
    of ``CUDA_VISIBLE_DEVICES`` (an NVML index, or a UUID or its unambiguous prefix); then the
    ordinal itself (nothing hidden, nothing reordered).
    """
    identity = cuda_identity(index) if identity is None else identity
    env = os.environ if env is None else env
    if identity.get("uuid"):
        try:
            return nvml.nvmlDeviceGetHandleByUUID(identity["uuid"]), identity["uuid"]
        except nvml.NVMLError:
            pass
    if identity.get("pci_bus_id"):
        try:
            handle = nvml.nvmlDeviceGetHandleByPciBusId(identity["pci_bus_id"])
            return handle, f"PCI {identity['pci_bus_id']}"
        except nvml.NVMLError:
            pass
    visible = [v.strip() for v in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if index < len(visible):
        entry = visible[index]
        if entry.isdigit():
            return nvml.nvmlDeviceGetHandleByIndex(int(entry)), f"NVML index {entry}"
        return _handle_by_uuid_prefix(nvml, entry), entry
    return nvml.nvmlDeviceGetHandleByIndex(index), f"NVML index {index}"


def _handle_by_uuid_prefix(nvml, prefix: str):
    """CUDA_VISIBLE_DEVICES may name a GPU by the start of its UUID (``GPU-8932f9``)."""
    matches = []
    for i in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        uuid = nvml.nvmlDeviceGetUUID(handle)
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        if uuid.startswith(prefix):
            matches.append(handle)
    if len(matches) != 1:
        raise nvml.NVMLError(f"CUDA_VISIBLE_DEVICES entry {prefix!r} names {len(matches)} GPUs")
    return matches[0]


class GpuMeter:
    """Energy of CUDA devices from NVML: the total-energy counter (Volta and newer), else power
    readings integrated over time by a sampling thread. ``indices`` are CUDA ordinals of this
    process, mapped to NVML devices by :func:`nvml_handle`."""

    def __init__(self, indices: list[int], interval_s: float = 0.5) -> None:
        import pynvml  # nvidia-ml-py

        pynvml.nvmlInit()
        self.nvml = pynvml
        found = [nvml_handle(pynvml, i) for i in indices]
        self.handles = [handle for handle, _ in found]
        names = ", ".join(f"cuda:{i} = {name}" for i, (_, name) in zip(indices, found, strict=True))
        self.interval_s = interval_s
        try:
            for h in self.handles:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
            self.counter = True
            self.method = f"NVML energy counter ({names})"
        except pynvml.NVMLError:
            self.counter = False
            self.method = f"NVML power readings every {interval_s:g}s ({names})"
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
