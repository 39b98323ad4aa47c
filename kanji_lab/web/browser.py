"""The system Chromium, driven by Playwright for Python: shared by the tests and the benchmark.

Playwright's own browser download is not used (it cannot work on machines without internet
access); Debian's ``chromium`` package is. ``python -m kanji_lab.web.browser`` is the setup step of
the test command: it installs the package with apt-get when it is missing and this is a root
shell on Debian/Ubuntu, and otherwise says how. It fails when such an install fails, or when
Chromium stays missing and ``CI`` is set (the browser tests must run there); elsewhere the
browser tests then skip with a reason.
It also fetches the pinned ONNX Runtime Web into the npm cache (what ``python -m kanji_lab.web``
does on its first run), so that missing npm or an unreachable registry is reported here, the
same way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


def _can_apt() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def _apt_install() -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            return False
    return chromium_path() is not None


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


def main() -> int:
    """0 when the browser tests can run or may skip; 1 when they must run and cannot: an
    install that was possible here failed (apt-get as root, npm on PATH), or ``CI`` is set."""
    from kanji_lab.web import WebError

    problems: list[tuple[str, bool]] = []  # (what, whether it fails the step everywhere)
    try:
        folder, version = fetch_runtime()
        print(f"kanji_lab.web.browser: ONNX Runtime Web {version} in {folder}", file=sys.stderr)
    except WebError as exc:
        problems.append((str(exc), shutil.which("npm") is not None))
    if chromium_path() is None:
        tried = _can_apt()
        if not (tried and _apt_install()):
            failed = " (apt-get install chromium failed)" if tried else ""
            problems.append((f"no Chromium{failed}: {INSTALL_HINT}", tried))
    if chromium_path() is not None:
        print(f"kanji_lab.web.browser: Chromium at {chromium_path()}", file=sys.stderr)
    for problem, _ in problems:
        print(f"kanji_lab.web.browser: {problem}", file=sys.stderr)
    if any(hard for _, hard in problems) or (problems and os.environ.get("CI")):
        return 1
    if problems:
        print("  (the browser tests will be skipped)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
