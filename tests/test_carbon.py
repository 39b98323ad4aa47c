"""Energy meters and the carbon callback: sources, arithmetic, and what a run writes."""

import json

import pytest

from kanji_lab import energy
from kanji_lab.callbacks.carbon import GRID_INTENSITY, grid_intensity
from kanji_lab.train import train
from tests.conftest import compose_train, tiny_overrides


def _zone(root, name, uj, max_uj=1000):
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "energy_uj").write_text(f"{uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return zone


def test_rapl_sums_packages_skips_subzones_and_wraps(tmp_path):
    pkg0 = _zone(tmp_path, "intel-rapl:0", 900)
    pkg1 = _zone(tmp_path, "intel-rapl:1", 100)
    _zone(tmp_path, "intel-rapl:0:0", 5)  # a part of package 0: not counted twice
    meter = energy.RaplMeter.find(tmp_path)
    assert [z.name for z in meter.zones] == ["intel-rapl:0", "intel-rapl:1"]
    meter.start()
    (pkg0 / "energy_uj").write_text("100\n")  # wrapped: 900 -> 1000 -> 100 = 200 uJ
    (pkg1 / "energy_uj").write_text("400\n")  # 300 uJ
    assert meter.stop() == pytest.approx(500e-6)
    assert "RAPL" in meter.method


def test_unreadable_rapl_falls_back_to_the_estimate(tmp_path, monkeypatch):
    assert energy.RaplMeter.find(tmp_path / "missing") is None
    monkeypatch.setattr(energy, "RAPL_ROOT", tmp_path / "missing")
    meter = energy.best_cpu_meter(12.5)
    assert isinstance(meter, energy.CpuTimeEstimate)
    assert meter.method.startswith("estimate: 12.5 W per busy core")


def test_estimate_is_watts_per_core_times_cpu_seconds():
    meter = energy.CpuTimeEstimate(10.0)
    clock = iter([100.0, 103.5])
    meter.clock = lambda: next(clock)
    meter.start()
    assert meter.stop() == pytest.approx(35.0)
    with pytest.raises(ValueError, match="process' or 'system"):
        energy.CpuTimeEstimate(10.0, scope="galaxy")


def test_system_cpu_seconds_reads_proc_stat(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    hz = 100
    monkeypatch.setattr(energy.os, "sysconf", lambda name: hz)
    # user nice system idle iowait irq softirq steal
    stat.write_text("cpu  100 0 50 1000 30 5 5 0 0 0\ncpu0 1 2 3\n")
    assert energy.system_cpu_seconds(stat) == pytest.approx(160 / hz)


def test_grid_intensity_from_region_or_number():
    value, source = grid_intensity("JP", None)
    assert value == GRID_INTENSITY["jp"] and "Our World in Data" in source
    assert grid_intensity("jp", 0.25) == (0.25, "configured")
    with pytest.raises(ValueError, match="intensity=<kg CO2e per kWh>"):
        grid_intensity("atlantis", None)


def test_run_writes_emissions_with_its_method(tmp_path, tmp_cache, capsys):
    run = tmp_path / "run"
    cfg = compose_train(
        [*tiny_overrides(), "debug=limit", "callbacks.carbon.intensity=0.5"], run, tmp_cache
    )
    metrics = train(cfg)
    written = json.loads((run / "emissions.json").read_text())
    assert set(written) >= {"kwh", "kg_co2e", "method", "duration_s", "region", "intensity"}
    assert set(written["phases"]) == {"fit", "test"}
    assert written["kwh"] > 0 and written["kg_co2e"] == pytest.approx(0.5 * written["kwh"])
    assert written["intensity_source"] == "configured" and written["region"] is None
    assert written["method"].startswith(("RAPL", "estimate"))
    assert metrics["emissions"] == written
    assert "g CO2e (" in capsys.readouterr().out
    # the loggers got it too
    header = (run / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "carbon/kwh" in header


def test_carbon_off_writes_nothing(tmp_path, tmp_cache):
    run = tmp_path / "run"
    cfg = compose_train([*tiny_overrides(), "debug=fdr", "callbacks.carbon=null"], run, tmp_cache)
    assert train(cfg)["emissions"] is None
    assert not (run / "emissions.json").exists()
