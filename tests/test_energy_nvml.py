"""The NVML meter measures the GPU a CUDA ordinal names, not the NVML device of that number."""

import types

import pytest

from kanji_lab import energy

# a machine with four GPUs, by NVML (PCI) order; each counter climbs by its own step per read
GPUS = [
    {"uuid": "GPU-aaaa1111", "pci": "00000000:17:00.0", "step_mj": 1000},
    {"uuid": "GPU-bbbb2222", "pci": "00000000:3B:00.0", "step_mj": 2000},
    {"uuid": "GPU-cccc3333", "pci": "00000000:86:00.0", "step_mj": 3000},
    {"uuid": "GPU-dddd4444", "pci": "00000000:AF:00.0", "step_mj": 4000},
]


def fake_nvml():
    """What GpuMeter uses of pynvml, over :data:`GPUS`."""

    class NVMLError(Exception):
        pass

    counters = [0] * len(GPUS)

    def by(key, value):
        value = value.decode() if isinstance(value, bytes) else value
        for i, gpu in enumerate(GPUS):
            if gpu[key] == value:
                return i
        raise NVMLError(f"no GPU with {key} {value}")

    def by_index(i):
        if not 0 <= i < len(GPUS):
            raise NVMLError(f"no GPU {i}")
        return i

    def energy_mj(handle):
        counters[handle] += GPUS[handle]["step_mj"]
        return counters[handle]

    return types.SimpleNamespace(
        NVMLError=NVMLError,
        nvmlInit=lambda: None,
        nvmlDeviceGetCount=lambda: len(GPUS),
        nvmlDeviceGetHandleByIndex=by_index,
        nvmlDeviceGetHandleByUUID=lambda uuid: by("uuid", uuid),
        nvmlDeviceGetHandleByPciBusId=lambda pci: by("pci", pci),
        nvmlDeviceGetUUID=lambda handle: GPUS[handle]["uuid"].encode(),
        nvmlDeviceGetTotalEnergyConsumption=energy_mj,
        nvmlDeviceGetPowerUsage=lambda handle: 0,
    )


@pytest.fixture
def nvml(monkeypatch):
    fake = fake_nvml()
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake


def measured_gpu(cuda_index):
    """Which GPU of :data:`GPUS` a meter for this CUDA ordinal reads (by its counter's step)."""
    meter = energy.GpuMeter([cuda_index])
    meter.start()
    joules = meter.stop()
    return [g["step_mj"] / 1e3 for g in GPUS].index(joules), meter.method


@pytest.mark.parametrize(
    ("visible", "cuda_index", "gpu"),
    [
        ("2,0", 0, 2),  # cuda:0 is NVML GPU 2, not NVML GPU 0
        ("2,0", 1, 0),
        ("3", 0, 3),
        ("GPU-bbbb2222,GPU-dddd4444", 1, 3),  # by UUID
        ("GPU-cc", 0, 2),  # by a UUID prefix, as CUDA allows
        (None, 1, 1),  # nothing hidden: the ordinal is the NVML index
    ],
)
def test_cuda_visible_devices_maps_the_ordinal(nvml, monkeypatch, visible, cuda_index, gpu):
    monkeypatch.setattr(energy, "cuda_identity", lambda index: {})  # CUDA says nothing
    if visible is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    found, method = measured_gpu(cuda_index)
    assert found == gpu
    assert method.startswith("NVML energy counter (cuda:")


def test_the_identity_cuda_reports_comes_first(nvml, monkeypatch):
    # CUDA's own order (fastest first) need not be NVML's: the UUID and PCI bus id settle it
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setattr(energy, "cuda_identity", lambda index: {"uuid": GPUS[3]["uuid"]})
    assert measured_gpu(0)[0] == 3
    monkeypatch.setattr(energy, "cuda_identity", lambda index: {"pci_bus_id": GPUS[2]["pci"]})
    assert measured_gpu(0) == (2, "NVML energy counter (cuda:0 = PCI 00000000:86:00.0)")
    # a MIG instance's UUID is no GPU's: the PCI bus id names the GPU that holds it
    monkeypatch.setattr(
        energy, "cuda_identity", lambda index: {"uuid": "MIG-ffff", "pci_bus_id": GPUS[1]["pci"]}
    )
    assert measured_gpu(0)[0] == 1


def test_identity_from_torch_device_properties(monkeypatch):
    props = types.SimpleNamespace(
        uuid="cccc3333", pci_bus_id=0x86, pci_device_id=0, pci_domain_id=0
    )
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.get_device_properties", lambda index: props)
    assert energy.cuda_identity(0) == {"uuid": "GPU-cccc3333", "pci_bus_id": GPUS[2]["pci"]}
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert energy.cuda_identity(0) == {}
