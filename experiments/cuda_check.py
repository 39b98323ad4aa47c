"""Runs every CUDA branch of the project once, on the GPUs present, and reports figures.

    python experiments/cuda_check.py        # a few minutes on one GPU

Checks, each on its own (one failing does not stop the others):

- ``resident``: ``perf.in_memory`` (true and auto) holds the images on the trainer's GPU, the
  batch indices are on the same device, training images/s;
- ``bf16``: ``precision=bf16-mixed`` runs the network in bfloat16;
- ``fused_adamw``: the optimizer is the fused AdamW kernel (``perf.fused_optimizer=null``);
- ``compile``: ``perf.compile`` trains, and agrees with the eager network;
- ``ddp``: DDP (NCCL) over every GPU present, images resident on each rank's own GPU, the ranks'
  batches disjoint and together the whole training split, every epoch;
- ``nvml``: the NVML energy meter of the carbon callback reads the GPU CUDA trains on;
- ``bnb_4bit``: bitsandbytes NF4 and FP4 layers on the GPU keep the float network's logits (cosine);
- ``export``: the GPU-trained network exported (ONNX, INT8 ONNX, NF4 safetensors) and checked;
- ``cli``: ``python -m kanji_lab trainer=ddp`` (``trainer=gpu`` on one GPU) end to end on a
  small synthetic set: train, test, export, ``emissions.json``.

Prints one JSON line of figures and writes experiments/results/cuda_check.json (.md, and its
results block in experiments/README.md). Without CUDA it says so and exits with status 0, checking
and writing nothing. ``--cpu-dry-run`` runs the same code on the CPU with tiny sizes (to test this
script on a machine without a GPU; CUDA-only checks are skipped) and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

NO_CUDA = (
    "cuda_check: no CUDA device is visible (torch.cuda.is_available() is False: a CPU-only torch "
    "build, no driver, or CUDA_VISIBLE_DEVICES hides every GPU); nothing was checked"
)


def exit_without_cuda() -> None:
    """Say there is nothing to check and exit 0, before the heavy imports."""
    if "--cpu-dry-run" in sys.argv[1:] or torch.cuda.is_available():
        return
    print(NO_CUDA, file=sys.stderr)
    print(json.dumps({"cuda": False, "checked": [], "message": NO_CUDA}))
    sys.exit(0)


if __name__ == "__main__" and "-h" not in sys.argv and "--help" not in sys.argv:
    exit_without_cuda()

import lightning.pytorch as pl  # noqa: E402
import numpy as np  # noqa: E402

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.bench_common import StepTimer, bench_datamodule, quiet_trainer  # noqa: E402
from experiments.results_io import record, table  # noqa: E402
from kanji_lab.models.module import CharacterClassifier  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-dry-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, help="images of the random data (default 40,000)")
    parser.add_argument("--skip", nargs="*", default=[], help="checks to leave out")
    args = parser.parse_args()
    exit_without_cuda()
    return run_checks(args)


def run_checks(args: argparse.Namespace) -> int:
    dry = args.cpu_dry_run
    device = "cpu" if dry else "cuda"
    samples = args.samples or (600 if dry else 40_000)
    checks: dict[str, dict] = {}
    context: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(Path(tmp), device, samples, dry)
        for name, check in CHECKS.items():
            if name in args.skip or (dry and name in CUDA_ONLY):
                checks[name] = {
                    "ok": None,
                    "skipped": "asked" if name in args.skip else "CUDA only",
                }
                continue
            start = time.perf_counter()
            try:
                figures = check(ctx, context)
                ok = figures.pop("ok", True)
            except Exception as exc:  # report and go on with the other checks
                figures = {"error": f"{type(exc).__name__}: {exc}"}
                figures["traceback"] = traceback.format_exc(limit=6)[-2000:]
                ok = False
            checks[name] = {"ok": ok, "seconds": round(time.perf_counter() - start, 1), **figures}
            print(f"cuda_check {name}: {json.dumps(checks[name])}", file=sys.stderr, flush=True)
    summary = {
        "command": "python experiments/cuda_check.py" + (" --cpu-dry-run" if dry else ""),
        "cuda": not dry,
        "devices": _devices(),
        "torch": torch.__version__,
        "samples": samples,
        "ok": all(c["ok"] is not False for c in checks.values()),
        "checks": checks,
    }
    if not dry:
        record("cuda_check", summary, _markdown(summary))
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


class Context:
    """What the checks share: a scratch folder, the device, a random ETL-shaped data set."""

    def __init__(self, tmp: Path, device: str, samples: int, dry: bool) -> None:
        self.tmp, self.device, self.samples, self.dry = tmp, device, samples, dry
        self.classes = 50 if dry else 500
        self.batch = 32 if dry else 512
        self.steps = 4 if dry else 60
        self.labels = [chr(0x4E00 + i) for i in range(self.classes)]

    def datamodule(self, in_memory):
        cache = str(self.tmp / "cache")
        return bench_datamodule(cache, self.classes, self.samples, self.batch, in_memory)

    def trainer(self, callbacks=(), **kwargs):
        settings = {
            "accelerator": "gpu" if self.device == "cuda" else "cpu",
            "devices": 1,
            "precision": "bf16-mixed" if self.device == "cuda" else "32-true",
            "max_steps": self.steps,
            "gradient_clip_val": 1.0,
            "callbacks": list(callbacks),
            **kwargs,
        }
        return quiet_trainer(**settings)


def check_resident(ctx: Context, shared: dict) -> dict:
    """Train the CNN with in_memory=true; shared with bf16 / fused_adamw / bnb / export."""
    dm = ctx.datamodule(True)
    model = CharacterClassifier("cnn", ctx.labels, channels_last=True)
    probe = Probe()
    timer = StepTimer(skip=5 if ctx.steps > 10 else 1)
    trainer = ctx.trainer([probe, timer])
    trainer.fit(model, datamodule=dm)
    shared.update(dm=dm, model=model, trainer=trainer, probe=probe)
    root = trainer.strategy.root_device
    rows = next(iter(dm.train_dataloader()))
    auto = ctx.datamodule("auto")
    ctx.trainer(max_steps=1).fit(CharacterClassifier("cnn", ctx.labels), datamodule=auto)
    figures = {
        "root_device": str(root),
        "images_on": str(dm.resident[0].device),
        "indices_on": str(rows.device),
        "batches_on": probe.batch_device,
        "auto_holds_images_on": str(auto.resident_device),
        "train_images_per_s": round(timer.images_per_s, 1),
        "batch_size": ctx.batch,
    }
    on_root = {figures["images_on"], figures["indices_on"], figures["batches_on"]} == {str(root)}
    auto_ok = ctx.device != "cuda" or figures["auto_holds_images_on"] == str(root)
    return {**figures, "ok": on_root and auto_ok}


class Probe(pl.Callback):
    """Records the first training batch's device and the dtype of the network's output then."""

    def __init__(self) -> None:
        self.batch_device = self.output_dtype = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.batch_device is None:
            self.batch_device = str(batch[0].device)
            self._hook = module.net.register_forward_hook(self._record)

    def _record(self, net, args, out):
        self.output_dtype = str(out.dtype).replace("torch.", "")
        self._hook.remove()


def check_bf16(ctx: Context, shared: dict) -> dict:
    probe, trainer = shared["probe"], shared["trainer"]
    return {
        "precision": str(trainer.precision),
        "bf16_supported": bool(torch.cuda.is_bf16_supported()),
        "network_output_dtype": probe.output_dtype,
        "ok": probe.output_dtype == "bfloat16",
    }


def check_fused_adamw(ctx: Context, shared: dict) -> dict:
    optimizer = shared["trainer"].optimizers[0]
    fused = bool(optimizer.defaults.get("fused"))
    return {"optimizer": type(optimizer).__name__, "fused": fused, "ok": fused}


def check_compile(ctx: Context, shared: dict) -> dict:
    torch.manual_seed(0)
    model = CharacterClassifier("cnn", ctx.labels, channels_last=True, compile=True)
    timer = StepTimer(skip=5 if ctx.steps > 10 else 1)
    start = time.perf_counter()
    ctx.trainer([timer]).fit(model, datamodule=shared["dm"])
    total = time.perf_counter() - start
    eager = CharacterClassifier("cnn", ctx.labels, channels_last=True).to(ctx.device).eval()
    eager.load_state_dict(model.state_dict())
    model.to(ctx.device).eval()  # the trainer's teardown moved it to the CPU
    x = torch.randn(64, 1, 64, 64, device=ctx.device)
    with torch.no_grad():
        diff = float((model(x).float() - eager(x).float()).abs().max())
    return {
        "fit_s_with_compilation": round(total, 1),
        "train_images_per_s": round(timer.images_per_s, 1),
        "max_abs_diff_vs_eager": diff,
        "ok": diff < 1e-2,
    }


def check_ddp(ctx: Context, shared: dict) -> dict:
    """ddp_spawn over the GPUs present (NCCL; gloo in the dry run), 2 epochs, resident data."""
    gpus = torch.cuda.device_count() if ctx.device == "cuda" else 2
    out = ctx.tmp / "ddp"
    out.mkdir()
    dm = ctx.datamodule(True)
    dm.targets = np.arange(len(dm.data), dtype=np.int64)  # targets that name their rows
    trainer = ctx.trainer(
        devices=gpus, strategy="ddp_spawn", max_steps=-1, max_epochs=2, limit_train_batches=None
    )
    start = time.perf_counter()
    trainer.fit(RowRecorder(str(out)), datamodule=dm)
    seconds = time.perf_counter() - start
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(gpus)]
    train = sorted(dm.splits["train"].tolist())
    disjoint_and_cover = True
    for epoch in ("0", "1"):
        rows = [[row for b in r["epochs"][epoch] for row in b] for r in ranks]
        together = sorted(row for part in rows for row in part)
        padded = len(together) - len(train)  # DistributedSampler pads with repeated batches
        unique = sorted(set(together))
        disjoint_and_cover &= unique == train and padded < gpus * ctx.batch
        if padded == 0:
            disjoint_and_cover &= together == train
    devices = [r["device"] for r in ranks]
    expected = [f"cuda:{r}" for r in range(gpus)] if ctx.device == "cuda" else ["cpu"] * gpus
    return {
        "ranks": gpus,
        "backend": "nccl" if ctx.device == "cuda" else "gloo",
        "images_on": devices,
        "batches_per_rank_per_epoch": [len(r["epochs"]["0"]) for r in ranks],
        "fit_s": round(seconds, 1),
        "ok": disjoint_and_cover and devices == expected,
    }


class RowRecorder(pl.LightningModule):
    """Records the rows of each training batch per epoch (the targets are row numbers) and writes
    them, with the device the images are held on; trains a token layer."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out
        self.net = torch.nn.Linear(64 * 64, 8)
        self.seen: dict = {}

    def training_step(self, batch, batch_idx):
        x, rows = batch
        self.seen.setdefault(self.current_epoch, []).append(rows.tolist())
        return self.net(x.flatten(1)).float().pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)

    def on_train_end(self) -> None:
        dm = self.trainer.datamodule
        record = {"device": str(dm.resident_device), "epochs": self.seen}
        Path(self.out, f"rank{self.global_rank}.json").write_text(json.dumps(record))


def check_nvml(ctx: Context, shared: dict) -> dict:
    from kanji_lab.energy import cuda_identity, gpu_meter

    try:
        import pynvml  # noqa: F401
    except ImportError:
        return {"ok": None, "skipped": "nvidia-ml-py is not installed: pip install -e '.[gpu]'"}
    meter = gpu_meter([0])
    if meter is None:
        return {"ok": False, "error": "NVML is installed but refused (no driver access?)"}
    x = torch.randn(4096, 4096, device="cuda")
    meter.start()
    start = time.perf_counter()
    while time.perf_counter() - start < 3.0:
        x = (x @ x).tanh()
    torch.cuda.synchronize()
    joules = meter.stop()
    seconds = time.perf_counter() - start
    return {
        "method": meter.method,
        "cuda_identity": cuda_identity(0),
        "joules_in_3s_of_matmuls": round(joules, 1),
        "mean_watts": round(joules / seconds, 1),
        "ok": joules > 0,
    }


def check_bnb_4bit(ctx: Context, shared: dict) -> dict:
    from kanji_lab.deploy import bnb
    from kanji_lab.deploy.pipeline import sample_inputs

    net = shared["model"].net.to(ctx.device).eval()  # trained there; teardown moved it back
    x = torch.from_numpy(sample_inputs(shared["dm"])).to(ctx.device)
    with torch.no_grad():
        want = net(x).float()
    figures = {}
    for quant_type in ("nf4", "fp4"):
        quantized, report = bnb.quantize_linears(net, quant_type, device=ctx.device)
        path = bnb.save_quantized(
            ctx.tmp / f"model.{quant_type}.safetensors", quantized, report, "cnn", {}, ctx.labels
        )
        reloaded, _ = bnb.load_quantized(path, device=ctx.device)
        same = same_state(quantized, reloaded)  # before a forward pass repacks them in memory
        with torch.no_grad():
            got, again = quantized(x).float(), reloaded(x).float()
        figures[quant_type] = {
            "layers": report.layers,
            "bytes_saved": report.bytes_saved,
            **follows_float(got, want),
            "reload": {
                **follows_float(again, want),
                "same_tensors": same,
            },
        }
    ok = all(
        f["ok"] and f["reload"]["ok"] and f["reload"]["same_tensors"] for f in figures.values()
    )
    return {**figures, "images": len(x), "ok": ok}


def follows_float(got: torch.Tensor, want: torch.Tensor) -> dict:
    """How a quantized network's logits ``got`` follow the float network's ``want``. Top-1
    agreement alone cannot judge a briefly trained network: it predicts one class for every
    image, so agreement is 0 or 1 on a near-tie. What 4-bit must keep is the logits' shape: their
    cosine, each vector centred (softmax ignores a shift)."""
    centred = [t - t.mean(1, keepdim=True) for t in (got, want)]
    cosine = float(torch.nn.functional.cosine_similarity(*centred, dim=1).mean())
    agreement = float((got.argmax(1) == want.argmax(1)).float().mean())
    return {
        "logit_cosine_with_float": round(cosine, 4),
        "max_abs_diff_with_float": float((got - want).abs().max()),
        "top1_agreement_with_float": round(agreement, 3),
        "float_classes_predicted": int(want.argmax(1).unique().numel()),
        "ok": cosine > 0.95,
    }


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """The file round trip is exact: the same tensors, bit for bit. (The logits may still differ
    in the last bits: bitsandbytes' CPU kernels repack 4-bit weights at the first forward pass.)"""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def check_export(ctx: Context, shared: dict) -> dict:
    from kanji_lab.deploy.pipeline import ExportSettings, Model, export_all

    trained = shared["model"]
    on = str(shared["trainer"].strategy.root_device)
    model = Model(trained.net, "cnn", {}, ctx.labels)
    settings = ExportSettings(int8=True, calibration_batches=2, bnb=["nf4"])
    report = export_all(ctx.tmp / "export", model, settings, shared["dm"])
    onnx = report["onnx"]
    return {
        "trained_on": on,
        "files": report["files"],
        "onnx_max_abs_diff": max(v for k, v in onnx.items() if k.startswith("max_abs_diff")),
        "int8_top1_agreement": report["int8"]["top1_agreement"],
    }


def check_cli(ctx: Context, shared: dict) -> dict:
    gpus = torch.cuda.device_count() if ctx.device == "cuda" else 1
    run = ctx.tmp / "cli_run"
    trainer = "ddp" if gpus > 1 else ("gpu" if ctx.device == "cuda" else "cpu")
    overrides = [
        f"trainer={trainer}",
        "debug=limit",
        'data.classes="亜唖娃阿哀愛挨姶逢葵茜穐悪握渥旭葦芦鯵梓"',
        f"paths.cache_dir={ctx.tmp / 'cli_cache'}",
        f"hydra.run.dir={run}",
        "perf.in_memory=true",
        "callbacks.progress_bar=null",
        "quantization=nf4",
        "logger=csv",
    ]
    command = [sys.executable, "-m", "kanji_lab", *overrides]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return {"ok": False, "returncode": done.returncode, "stderr": done.stderr[-2000:]}
    metrics = json.loads((run / "metrics.json").read_text())
    emissions = metrics.get("emissions") or {}
    return {
        "trainer": trainer,
        "test_acc": metrics.get("test/acc"),
        "files": sorted(metrics.get("files", {})),
        "timings": metrics.get("timings"),
        "energy_method": emissions.get("method"),
        "ranks": emissions.get("ranks"),
        "ok": (run / "model.onnx").is_file() and emissions.get("ranks") == gpus,
    }


CHECKS = {
    "resident": check_resident,
    "bf16": check_bf16,
    "fused_adamw": check_fused_adamw,
    "compile": check_compile,
    "ddp": check_ddp,
    "nvml": check_nvml,
    "bnb_4bit": check_bnb_4bit,
    "export": check_export,
    "cli": check_cli,
}
CUDA_ONLY = {"bf16", "fused_adamw", "compile", "nvml"}


def _devices() -> list[str]:
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _markdown(summary: dict) -> str:
    rows = []
    for name, check in summary["checks"].items():
        status = {True: "ok", False: "FAILED", None: "skipped"}[check["ok"]]
        figures = {k: v for k, v in check.items() if k not in ("ok", "traceback")}
        rows.append((name, f"{status}: `{json.dumps(figures, ensure_ascii=False)}`"))
    on = ", ".join(summary["devices"]) or "no GPU"
    head = f"`{summary['command']}` on {on}, torch {summary['torch']}:"
    return head + "\n\n" + table(rows)


if __name__ == "__main__":
    sys.exit(main())
