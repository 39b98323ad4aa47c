"""The system Chromium, driven by Playwright for Python: shared by the tests and the benchmark.

Playwright's own browser download is not used (it cannot work on machines without internet
access); Debian's ``chromium`` package is, or the browser ``KANJI_LAB_CHROMIUM`` names. The
library never installs it: readying the test browser is a development step
(``python -m tests.ready_browser``, part of the test command).
"""

from __future__ import annotations

import os
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
# no GPU, no sandbox (root in a container), and none of the background connections a closed
# network refuses
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "install Chromium (Debian/Ubuntu: apt-get install chromium) or set KANJI_LAB_CHROMIUM"
)


def chromium_path() -> Path | None:
    """``KANJI_LAB_CHROMIUM``, else the first system Chromium found."""
    named = os.environ.get("KANJI_LAB_CHROMIUM")
    for candidate in [named] if named else CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[dev]'"
    if chromium_path() is None:
        return f"no Chromium found ({', '.join(CANDIDATES)}): {INSTALL_HINT}"
    return None


def launch(playwright):  # noqa: ANN001, ANN201 (playwright's types are optional)
    """A headless system Chromium."""
    path = chromium_path()
    if path is None:
        raise FileNotFoundError(f"no Chromium found: {INSTALL_HINT}")
    return playwright.chromium.launch(executable_path=str(path), headless=True, args=FLAGS)


def fetch_runtime() -> tuple[Path, str]:
    """The folder and version of the pinned ONNX Runtime Web (``conf/web.yaml``) in the default
    npm cache, installed when missing."""
    from hydra import compose, initialize_config_dir

    from kanji_lab.config import config_dir
    from kanji_lab.web.npm import runtime_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("web", overrides=["run_dir=."])
    version = str(cfg.npm.version)
    return runtime_dir(Path(cfg.npm.cache_dir), version), version
