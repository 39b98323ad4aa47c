"""ONNX Runtime Web from the npm registry, installed once into a cache folder.

``npm install onnxruntime-web@<version>`` runs the first time a version is asked for; later
builds copy from the cache. Only :data:`RUNTIME_FILES` go into a site: the ES-module bundle of
the WASM backend (its Emscripten glue included) and the one ``.wasm`` binary it loads.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

from kanji_lab.web import WebError

log = logging.getLogger(__name__)
PACKAGE = "onnxruntime-web"
BUNDLE = "ort.wasm.bundle.min.mjs"
WASM = "ort-wasm-simd-threaded.wasm"
RUNTIME_FILES = (BUNDLE, WASM)
NPM_TIMEOUT_S = 600

INSTALL_NODE = (
    "Node.js and npm are needed once, to fetch {spec} into {folder} (later builds use that copy). "
    "Install them (Debian/Ubuntu: apt-get install nodejs npm; macOS: brew install node; others: "
    "https://nodejs.org/) and run the command again, or point ort_dir= at a folder that holds "
    f"{BUNDLE} and {WASM} (node_modules/{PACKAGE}/dist of any install of that version)."
)


def runtime_dir(cache_dir: Path, version: str, ort_dir: str | Path | None = None) -> Path:
    """A folder holding :data:`RUNTIME_FILES` of ``onnxruntime-web@version``: ``ort_dir`` when
    given, else the npm cache under ``cache_dir`` (installed now when missing)."""
    if ort_dir is not None:
        folder = Path(ort_dir).expanduser()
        _check_files(folder, f"ort_dir={folder}")
        return folder
    prefix = Path(cache_dir).expanduser() / f"{PACKAGE}-{version}"
    dist = prefix / "node_modules" / PACKAGE / "dist"
    if _installed_version(prefix) == version and all((dist / f).is_file() for f in RUNTIME_FILES):
        return dist
    install(prefix, version)
    _check_files(dist, f"npm install of {PACKAGE}@{version}")
    return dist


def install(prefix: Path, version: str) -> None:
    """``npm install <package>@<version>`` into ``prefix`` (no scripts, no audit)."""
    spec = f"{PACKAGE}@{version}"
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise WebError(INSTALL_NODE.format(spec=spec, folder=prefix))
    prefix.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund"]
    command += ["--ignore-scripts", "--loglevel=error", spec]
    log.info("fetching %s with npm into %s (once)", spec, prefix)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WebError(f"npm install {spec} failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise WebError(
            f"npm install {spec} failed (exit status {done.returncode}); is the npm registry "
            f"reachable? npm said: " + " | ".join(tail)
        )


def _installed_version(prefix: Path) -> str | None:
    manifest = prefix / "node_modules" / PACKAGE / "package.json"
    try:
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def _check_files(folder: Path, what: str) -> None:
    missing = [f for f in RUNTIME_FILES if not (folder / f).is_file()]
    if missing:
        raise WebError(f"{what}: {', '.join(missing)} not found in {folder}")
