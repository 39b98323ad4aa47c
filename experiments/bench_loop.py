"""Training throughput: Lightning loop against a plain PyTorch loop, and the data pipeline alone.

All three run in one process on the same model, the same memory-mapped cache and the same batches,
so the ratios hold on a noisy machine even when the absolute figures move.

    python experiments/bench_loop.py            # full: 60 timed steps per measurement
    python experiments/bench_loop.py --quick    # 15 timed steps

Writes experiments/results/bench_loop.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from kanji_lab.data.datamodule import CharacterDataModule
from kanji_lab.models.module import CharacterClassifier

sys.path.insert(0, str(Path(__file__).parent))
from bench_common import StepTimer, bench_datamodule, quiet_trainer  # noqa: E402
from results_io import record, table  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--classes", type=int, default=3036)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    steps, skip = (15, 3) if args.quick else (60, 5)
    classes = [chr(0x4E00 + i) for i in range(args.classes)]
    with tempfile.TemporaryDirectory() as tmp:
        dm = bench_datamodule(tmp, args.classes, args.classes * 12, args.batch, in_memory=False)
        plain = plain_loop(dm, classes, steps, skip)
        lightning = lightning_loop(dm, classes, steps, skip)
        pipeline = pipeline_only(dm, steps * 3)
    result = {
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "batch_size": args.batch,
        "classes": args.classes,
        "timed_steps": steps,
        "plain_loop_images_per_s": round(plain, 1),
        "lightning_images_per_s": round(lightning, 1),
        "lightning_overhead_pct": round(100 * (plain / lightning - 1), 2),
        "pipeline_images_per_s": round(pipeline, 1),
        "pipeline_to_model_ratio": round(pipeline / plain, 2),
        "command": "python experiments/bench_loop.py" + (" --quick" if args.quick else ""),
    }
    markdown = (
        "Training throughput, default CNN, 3,036 classes, batch 256, this machine's CPU "
        f"(`{result['command']}`):\n\n" + table(list(result.items()))
    )
    record("bench_loop", result, markdown)
    for key, value in result.items():
        print(f"{key}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
