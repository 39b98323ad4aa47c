"""Throughput on ETL9G-sized data: every architecture, training and inference, CPU and GPU;
with ``--loop``, the Lightning loop against a plain PyTorch loop and the data pipeline alone.

Random images of ETL9G's shape (64 x 64 uint8; 607,200 of them by default, `--quick` uses fewer)
stand in for the real data, whose content does not change the speed. For each device (CPU always,
CUDA when present) and each registered architecture it measures training images/s through the
real stack (CharacterDataModule + CharacterClassifier + Lightning Trainer; on a GPU: images held
on the device, bf16 autocast, channels-last) and inference images/s. In the same run it trains
the CNN from a plain per-sample DataLoader with PIL augmentation, the way public projects do, and
reports the ratio, which is the figure that holds on a noisy machine.

``--loop`` (CPU only) trains the default CNN in one process three ways on the same memory-mapped
cache and the same batches: through Lightning, through a plain PyTorch loop doing the same work
(augment, forward, loss, backward, clip, step), and the data pipeline alone with no model; the
ratios hold on a noisy machine even when the absolute figures move.

    python experiments/bench_throughput.py --quick   # within 3 minutes on a 2-core CPU
    python experiments/bench_throughput.py           # full size
    python experiments/bench_throughput.py --devices cuda --epochs 30   # + 30 whole CNN epochs
    python experiments/bench_throughput.py --loop            # 60 timed steps per measurement
    python experiments/bench_throughput.py --loop --quick    # 15 timed steps

Writes experiments/results/bench_throughput.json (.md; ``--loop``: bench_loop) and its results
block in experiments/README.md; a quick or partial run (--quick, fewer samples, steps or classes,
some models) writes bench_throughput_quick.json (bench_loop_quick) and .md only.
Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from torch.autograd import DeviceType
from torch.utils.data import DataLoader, Dataset

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.bench_common import StepTimer, bench_datamodule, quiet_trainer  # noqa: E402
from experiments.results_io import record, table  # noqa: E402
from kanji_lab.data.datamodule import CharacterDataModule
from kanji_lab.models.module import CharacterClassifier
from kanji_lab.models.registry import architectures

ETL9G_SAMPLES = 607_200
CLASSES = 3036
LOOP_STEPS = 60  # timed steps of a full --loop run (--quick: 15)


class PerSampleAugmented(Dataset):
    """The common baseline: one PIL image at a time, a random affine warp, then a tensor."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, rows: np.ndarray) -> None:
        self.images, self.targets, self.rows = images, targets, rows
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        row = self.rows[i]
        img = Image.fromarray(np.asarray(self.images[row]))
        angle = np.deg2rad(self.rng.uniform(-8, 8))
        scale = self.rng.uniform(0.85, 1.1)
        cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
        tx, ty = self.rng.uniform(-4, 4, size=2)
        coeffs = (cos, -sin, 32 - 32 * cos + 32 * sin + tx, sin, cos, 32 - 32 * sin - 32 * cos + ty)
        img = img.transform((64, 64), Image.AFFINE, coeffs, resample=Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1.0).unsqueeze(0)
        return x, int(self.targets[row])


class GpuBusy(StepTimer):
    """On CUDA: the share of the timed steps' wall time during which GPU kernels ran, from the
    profiler's kernel times (an upper bound where kernels on several streams overlap)."""

    def __init__(self, skip: int) -> None:
        super().__init__(skip)
        self.profiler: torch.profiler.profile | None = None
        self.busy = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, module, outputs, batch, batch_idx)
        if trainer.global_step == self.skip:
            activities = [torch.profiler.ProfilerActivity.CUDA]
            self.profiler = torch.profiler.profile(activities=activities)
            self.profiler.__enter__()

    def on_train_end(self, trainer, module) -> None:
        if self.profiler is None:
            return
        torch.cuda.synchronize()
        self.profiler.__exit__(None, None, None)
        events = self.profiler.key_averages()
        kernel_us = sum(
            e.self_device_time_total for e in events if e.device_type == DeviceType.CUDA
        )
        self.busy = round(kernel_us / 1e6 / max(self.end - self.start, 1e-9), 3)


def trainer_kwargs(device: str, steps: int, timer: StepTimer) -> dict:
    precision = "bf16-mixed" if device == "cuda" and torch.cuda.is_bf16_supported() else "32-true"
    return {
        "accelerator": "gpu" if device == "cuda" else "cpu",
        "devices": 1,
        "max_steps": steps,
        "precision": precision,
        "gradient_clip_val": 1.0,
        "callbacks": [timer],
    }


def train_speed(
    arch: str, dm, labels: list[str], device: str, steps: int, skip: int
) -> tuple[float, float | None]:
    """Training images/s and, on CUDA, the GPU-busy share of the step time."""
    torch.manual_seed(0)
    model = CharacterClassifier(arch, labels, channels_last=True)
    timer = GpuBusy(skip) if device == "cuda" else StepTimer(skip)
    quiet_trainer(**trainer_kwargs(device, skip + steps, timer)).fit(model, datamodule=dm)
    return timer.images_per_s, getattr(timer, "busy", None)


def baseline_speed(dm, labels: list[str], device: str, steps: int, skip: int) -> float:
    """The CNN trained from :class:`PerSampleAugmented` batches through the same Trainer."""
    torch.manual_seed(0)
    dataset = PerSampleAugmented(dm.data.images, dm.targets, dm.splits["train"])
    workers = min(4, os.cpu_count() or 1)
    loader = DataLoader(dataset, batch_size=dm.batch_size, shuffle=True, num_workers=workers)
    model = CharacterClassifier("cnn", labels, channels_last=True)
    timer = StepTimer(skip)
    quiet_trainer(**trainer_kwargs(device, skip + steps, timer)).fit(model, loader)
    return timer.images_per_s


def epochs_time(dm, labels: list[str], device: str, epochs: int) -> float:
    """Wall seconds of ``epochs`` whole training epochs of the CNN (``--epochs``), as a run
    trains them (validation off): the figure behind "30 ETL9G epochs in N minutes"."""
    torch.manual_seed(0)
    model = CharacterClassifier("cnn", labels, channels_last=True)
    kwargs = {**trainer_kwargs(device, -1, StepTimer(0)), "max_epochs": epochs}
    start = time.perf_counter()
    quiet_trainer(**kwargs).fit(model, datamodule=dm)
    _sync(device)
    return time.perf_counter() - start


@torch.no_grad()
def inference_speed(arch: str, labels: list[str], device: str, batches: int, batch: int) -> float:
    model = CharacterClassifier(arch, labels, channels_last=True).eval().to(device)
    x = torch.randn(batch, 1, 64, 64, device=device)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda")
    with autocast:
        model(x)
        _sync(device)
        start = time.perf_counter()
        for _ in range(batches):
            model(x)
        _sync(device)
    return batches * batch / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(device: str, args: argparse.Namespace, cache_dir: str) -> dict:
    labels = [chr(0x4E00 + i) for i in range(args.classes)]
    dm = bench_datamodule(
        cache_dir, args.classes, args.samples, args.batch, in_memory=device == "cuda"
    )
    steps, skip = args.steps, 3
    rows: dict = {"device": device, "name": _device_name(device), "models": {}}
    for arch in args.models:
        speed, busy = train_speed(arch, dm, labels, device, steps, skip)
        rows["models"][arch] = {
            "train_images_per_s": round(speed, 1),
            "gpu_busy_share": busy,
            "inference_images_per_s": round(
                inference_speed(arch, labels, device, max(3, steps // 2), 1024), 1
            ),
        }
        print(f"{device} {arch}: {rows['models'][arch]}", flush=True)
    baseline = baseline_speed(dm, labels, device, steps, skip)
    ours = rows["models"].get("cnn", {}).get("train_images_per_s")
    rows["baseline_per_sample_cnn_train_images_per_s"] = round(baseline, 1)
    rows["cnn_speedup_over_baseline"] = round(ours / baseline, 2) if ours else None
    if ours:
        epoch = len(dm.splits["train"]) * ETL9G_SAMPLES / args.samples
        rows["cnn_etl9g_epoch_s"] = round(epoch / ours, 1)
    if args.epochs:
        rows["cnn_epochs"] = args.epochs
        rows["cnn_epochs_s"] = round(epochs_time(dm, labels, device, args.epochs), 1)
        print(f"{device} cnn: {args.epochs} epochs in {rows['cnn_epochs_s']} s", flush=True)
    return rows


def _device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def lightning_loop(dm: CharacterDataModule, classes: list[str], steps: int, skip: int) -> float:
    torch.manual_seed(0)
    model = CharacterClassifier("cnn", classes)
    timer = StepTimer(skip)
    trainer = quiet_trainer(
        accelerator="cpu", max_steps=skip + steps, gradient_clip_val=1.0, callbacks=[timer]
    )
    trainer.fit(model, datamodule=dm)
    return timer.images_per_s


def plain_loop(dm: CharacterDataModule, classes: list[str], steps: int, skip: int) -> float:
    """The same work without Lightning: augment, forward, loss, backward, clip, step."""
    torch.manual_seed(0)
    model = CharacterClassifier("cnn", classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    images, start = 0, 0.0
    for step, (x, y) in enumerate(_batches(dm, skip + steps + 1)):
        if step == skip + 1:
            start = time.perf_counter()
        x = dm.augment(x.unsqueeze(1).float() / 255.0) * 2 - 1
        loss = model.loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step > skip:
            images += len(y)
    return images / (time.perf_counter() - start)


def pipeline_only(dm: CharacterDataModule, steps: int) -> float:
    """Batches gathered from the memory map and augmented, with no model."""
    start, images = time.perf_counter(), 0
    for x, y in _batches(dm, steps):
        x = dm.augment(x.unsqueeze(1).float() / 255.0) * 2 - 1
        images += len(y)
    return images / (time.perf_counter() - start)


def _batches(dm: CharacterDataModule, count: int):
    loader = dm.train_dataloader()
    while count > 0:
        for batch in loader:
            yield batch
            count -= 1
            if count == 0:
                return


def measure_loop(args: argparse.Namespace, cache_dir: str) -> dict:
    """``--loop``: plain loop, Lightning loop and the pipeline alone, default CNN, on the CPU."""
    skip = 3 if args.quick else 5
    classes = [chr(0x4E00 + i) for i in range(args.classes)]
    dm = bench_datamodule(cache_dir, args.classes, args.samples, args.batch, in_memory=False)
    plain = plain_loop(dm, classes, args.steps, skip)
    lightning = lightning_loop(dm, classes, args.steps, skip)
    pipeline = pipeline_only(dm, args.steps * 3)
    return {
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "batch_size": args.batch,
        "classes": args.classes,
        "samples": args.samples,
        "timed_steps": args.steps,
        "plain_loop_images_per_s": round(plain, 1),
        "lightning_images_per_s": round(lightning, 1),
        "lightning_overhead_pct": round(100 * (plain / lightning - 1), 2),
        "pipeline_images_per_s": round(pipeline, 1),
        "pipeline_to_model_ratio": round(pipeline / plain, 2),
        "command": command(),
    }


def command() -> str:
    return " ".join(["python experiments/bench_throughput.py", *sys.argv[1:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, few steps (CPU: <3 min)")
    parser.add_argument(
        "--loop",
        action="store_true",
        help="instead: the Lightning loop against a plain PyTorch loop and the data pipeline "
        "alone (default CNN, CPU)",
    )
    parser.add_argument(
        "--samples", type=int, help="images (default: ETL9G's 607,200; --loop: 12 per class)"
    )
    parser.add_argument("--classes", type=int, default=CLASSES)
    parser.add_argument("--steps", type=int, help="timed training steps per model")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--models", nargs="*", default=architectures())
    parser.add_argument(
        "--epochs",
        type=int,
        default=0,
        help="also time this many whole CNN training epochs on the data (e.g. 30 at ETL9G size)",
    )
    parser.add_argument(
        "--devices",
        nargs="*",
        choices=["cpu", "cuda"],
        help="default: the CPU, and CUDA if present",
    )
    args = parser.parse_args()
    if args.loop and (args.epochs or (args.devices and args.devices != ["cpu"])):
        parser.error("--loop runs on the CPU and times steps, not epochs")
    if args.loop:
        args.samples = args.samples or args.classes * 12
        args.steps = args.steps or (15 if args.quick else LOOP_STEPS)
    else:
        args.samples = args.samples or (20_000 if args.quick else ETL9G_SAMPLES)
        args.steps = args.steps or (6 if args.quick else 40)
    name, readme = destination(args)
    if args.loop:
        with tempfile.TemporaryDirectory() as tmp:
            summary = measure_loop(args, tmp)
        markdown = (
            f"Training throughput, default CNN, {args.classes:,} classes, batch {args.batch}, "
            f"this machine's CPU (`{summary['command']}`):\n\n" + table(list(summary.items()))
        )
        for key, value in summary.items():
            print(f"{key}: {value}")
    else:
        devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        with tempfile.TemporaryDirectory() as tmp:
            results = [measure(device, args, tmp) for device in devices]
        summary = {
            "command": command(),
            "samples": args.samples,
            "classes": args.classes,
            "batch_size": args.batch,
            "timed_steps": args.steps,
            "devices": results,
        }
        markdown = _markdown(summary)
        print(f"devices: {', '.join(r['name'] for r in results)}")
    record(name, summary, markdown, readme=readme)
    print(
        f"recorded as experiments/results/{name}.json"
        + ("" if readme else " (experiments/README.md unchanged)")
    )
    print(json.dumps(summary))


def destination(args: argparse.Namespace) -> tuple[str, bool]:
    """Where a run's figures go: a full run (ETL9G's size and classes, 40+ timed steps, every
    architecture; ``--loop``: 3,036 classes, 60+ timed steps) is ``bench_throughput``
    (``bench_loop``) and updates its block in experiments/README.md; a quick or partial one is
    recorded apart, as ``bench_throughput_quick`` (``bench_loop_quick``), and leaves the
    full-size figures there alone."""
    loop = getattr(args, "loop", False)
    same_classes = getattr(args, "classes", CLASSES) == CLASSES
    if loop:
        name = "bench_loop"
        full = not args.quick and args.steps >= LOOP_STEPS and same_classes
    else:
        name = "bench_throughput"
        full = (
            not args.quick
            and args.samples >= ETL9G_SAMPLES
            and args.steps >= 40
            and set(args.models) >= set(architectures())
            and same_classes
        )
    return (name, True) if full else (f"{name}_quick", False)


def _markdown(summary: dict) -> str:
    parts = [
        f"`{summary['command']}` ({summary['samples']:,} images, batch {summary['batch_size']}):"
    ]
    for r in summary["devices"]:
        rows = [
            (
                f"{arch} train / inference images/s",
                f"{m['train_images_per_s']:,.0f} / {m['inference_images_per_s']:,.0f}",
            )
            for arch, m in r["models"].items()
        ]
        rows += [
            (
                "per-sample DataLoader baseline, CNN train images/s",
                f"{r['baseline_per_sample_cnn_train_images_per_s']:,.0f}",
            ),
            ("CNN speed-up over the baseline", r["cnn_speedup_over_baseline"]),
            ("CNN, one ETL9G training epoch", f"{r.get('cnn_etl9g_epoch_s')} s"),
        ]
        if "cnn_epochs" in r:
            rows.append((f"CNN, {r['cnn_epochs']} whole training epochs", f"{r['cnn_epochs_s']} s"))
        if r.get("models", {}).get("cnn", {}).get("gpu_busy_share") is not None:
            rows.append(("CNN training, GPU busy share", r["models"]["cnn"]["gpu_busy_share"]))
        parts.append(f"\n{r['device']} ({r['name']}):\n\n" + table(rows))
    return "\n".join(parts)


if __name__ == "__main__":
    main()
