"""The short summary printed at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def file_sizes(run_dir: Path, paths: list[Path]) -> dict[str, int]:
    """Size in bytes of each file, keyed by its path relative to ``run_dir``."""
    return {str(Path(p).relative_to(run_dir)): Path(p).stat().st_size for p in paths}


def print_summary(metrics: dict[str, Any]) -> None:
    """Print a run's headline figures: accuracy, size, files, where it went."""

    def pct(key: str) -> str:
        value = metrics.get(key)
        return f"{100 * value:.2f}%" if value is not None else "n/a"

    times = metrics.get("timings", {})
    lines = [
        "",
        f"kanji_lab run: {metrics['arch']} on {metrics['data']} ({metrics['num_classes']} classes)",
        f"  test top-1 {pct('test/acc')}   top-5 {pct('test/acc_top5')}   "
        f"best val top-1 {pct('val/acc_best')}",
        f"  parameters {metrics['parameters']:,}   epochs {metrics['epochs']}",
        "  time " + "  ".join(f"{k[:-2]} {v:.0f}s" for k, v in times.items()),
    ]
    lines += [f"  {name}: {size / 1e6:.2f} MB" for name, size in metrics.get("files", {}).items()]
    if emissions := metrics.get("emissions"):
        lines.append(
            f"  energy {emissions['kwh']:.3g} kWh   carbon {1000 * emissions['kg_co2e']:.3g} g CO2e"
            f" ({emissions['method']})"
        )
    if error := metrics.get("export_error"):
        lines.append(f"  EXPORT FAILED: {error}")
        lines.append(f"  re-export: python -m kanji_lab.export run_dir={metrics['run_dir']}")
    lines.append(f"  run directory: {metrics['run_dir']}")
    print("\n".join(lines), flush=True)
