"""Write the static site: the page, ONNX Runtime Web, the model and what the page needs of it.

Layout of ``out``::

    index.html app.js normalize.js style.css     the page (copied from ``static/``)
    ort/ort.wasm.bundle.min.mjs, ort/*.wasm      ONNX Runtime Web, WASM backend only
    model/model.int8.onnx (or model.onnx)        the run's exported model
    model/model.json                             name, classes, size, labels, preprocessing, prior

Labels and preprocessing settings are read from the ONNX file's own metadata (what
``kanji_lab.deploy.onnx_export`` wrote), so the page normalises strokes with the settings the
model was trained with. Nothing is fetched from elsewhere at run time.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from kanji_lab.deploy.onnx_export import read_metadata
from kanji_lab.deploy.pipeline import INT8_FILE, ONNX_FILE
from kanji_lab.prior import checked_weight, log_prior
from kanji_lab.run_dir import RunDirError
from kanji_lab.web import WebError
from kanji_lab.web.npm import PACKAGE, RUNTIME_FILES

MODEL_FILES = {"int8": INT8_FILE, "float": ONNX_FILE}
PAGE_FILES = ("index.html", "app.js", "normalize.js", "style.css")
MANIFEST = "model/model.json"
OWNED_DIRS = ("ort", "model")  # replaced on every build


def static_dir() -> Path:
    """The page's source files (package data of :mod:`kanji_lab.web`)."""
    return Path(str(resources.files("kanji_lab.web") / "static"))


def model_file(run_dir: Path | None, variant: str) -> Path:
    """The run's ONNX file of ``variant`` (``int8`` or ``float``); without a run, the INT8 file
    of the default model shipped in the package."""
    if variant not in MODEL_FILES:
        raise WebError(f"variant={variant}: unknown variant; choose from {tuple(MODEL_FILES)}")
    if run_dir is None:
        return shipped_file(variant)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run_dir={run_dir}: no such directory")
    path = run_dir / MODEL_FILES[variant]
    if not path.is_file():
        raise RunDirError(
            f"{path} not found; a finished training run writes it "
            f"(or run: python -m kanji_lab.export run_dir={run_dir})"
        )
    return path


def shipped_file(variant: str) -> Path:
    """The default shipped model's file (``kanji_lab/shipped/registry.json``)."""
    from kanji_lab.recognizer import shipped_models

    models = shipped_models()
    if not models:
        raise RunDirError("no model is shipped with this kanji_lab: pass run_dir=<a training run>")
    if variant != "int8":
        raise WebError(f"variant={variant}: the shipped models are INT8; or pass run_dir=<a run>")
    return models[0].file


def manifest(
    path: Path, run_dir: Path | None, variant: str, ort_version: str, prior: float = 0.0
) -> dict[str, Any]:
    """What the page reads before it loads the model; ``prior``: the weight of the
    character-frequency prior the page starts with (``kanjiLab.priorWeight``)."""
    meta = read_metadata(path)
    preprocessing = meta.get("preprocessing")
    if not isinstance(preprocessing, dict) or "normalize" not in preprocessing:
        raise WebError(
            f"{path} carries no normalisation settings (exported before they existed); "
            f"export it again: python -m kanji_lab.export run_dir={run_dir}"
        )
    return {
        "name": Path(run_dir).resolve().name if run_dir else path.name.split(".")[0],
        "arch": meta.get("arch"),
        "variant": variant,
        "file": f"model/{path.name}",
        "bytes": path.stat().st_size,
        "classes": len(meta["labels"]),
        "labels": meta["labels"],
        "preprocessing": preprocessing,
        "prior": {
            "weight": checked_weight(prior),
            "log": [round(float(v), 4) for v in log_prior(meta["labels"])],
        },
        "runtime": {"package": PACKAGE, "version": ort_version, "backend": "wasm"},
    }


def build_site(
    run_dir: Path | None,
    out: Path,
    runtime: Path,
    variant: str = "int8",
    ort_version: str = "",
    prior: float = 0.0,
) -> dict[str, Any]:
    """Write the site for ``run_dir``'s ``variant`` model (None: the shipped model) into ``out``,
    with the ONNX Runtime Web files from the folder ``runtime``; returns the manifest plus the
    site's file sizes."""
    path = model_file(run_dir, variant)
    info = manifest(path, run_dir, variant, ort_version, prior)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in OWNED_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)
        (out / name).mkdir()
    source = static_dir()
    for name in PAGE_FILES:
        shutil.copyfile(source / name, out / name)
    for name in RUNTIME_FILES:
        shutil.copyfile(Path(runtime) / name, out / "ort" / name)
    shutil.copyfile(path, out / info["file"])
    (out / MANIFEST).write_text(json.dumps(info, ensure_ascii=False) + "\n", encoding="utf-8")
    return {**info, "site_bytes": site_bytes(out)}


def site_bytes(out: Path) -> dict[str, int]:
    """Bytes per file of a built site, by path relative to it."""
    return {
        str(p.relative_to(out)): p.stat().st_size
        for p in sorted(Path(out).rglob("*"))
        if p.is_file()
    }


def describe(info: dict[str, Any]) -> str:
    """A short summary of a built site."""
    sizes = info["site_bytes"]
    total = sum(sizes.values())
    return (
        f"{info['name']} ({info['variant']}, {info['classes']} classes, model "
        f"{info['bytes'] / 1e6:.2f} MB); {len(sizes)} files, {total / 1e6:.1f} MB in all"
    )
