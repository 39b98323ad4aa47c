"""``python -m kanji_lab.web``: the static site, driven in a real browser (headless Chromium).

The site is built from the shared tiny run (tests/deploy_run.py) and served on 127.0.0.1; the
page is drawn on with pointer events, stroke by stroke. Strokes come from KanjiVG and from an
inline parse of the Tomoe stroke set (/work/shared/realdev, when present). Without Chromium or
Playwright (or npm and a cached ONNX Runtime Web) the tests skip with the reason, except under
CI, where they fail.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from kanji_lab.config import config_dir
from kanji_lab.data import normalize
from kanji_lab.data.kanjivg import load_strokes
from kanji_lab.data.normalize import strokes_input
from kanji_lab.deploy.onnx_export import read_metadata, run_session, session
from kanji_lab.predict import top_k
from kanji_lab.web import WebError, browser
from kanji_lab.web.cli import build
from kanji_lab.web.npm import BUNDLE, WASM
from kanji_lab.web.serve import Background
from kanji_lab.web.site import PAGE_FILES
from tests.deploy_run import deploy_run

PAD = 320  # the pad's size in CSS pixels (style.css)
KANJIVG_CHARS = "亜唖娃阿哀愛挨逢葵悪握圧扱安暗案以位依偉囲委威意"
TOMOE = Path("/work/shared/realdev/tomoe/all.tdic")
# an input tensor may differ by one grey level (rounding of the area average) in [-1, 1] units
MAX_ABS, MEAN_ABS = 0.1, 1e-3


def web_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("web", overrides=overrides)


def kanjivg(char: str) -> list[list[list[float]]]:
    ch = load_strokes(char)
    return [ch.points[s:e].astype(float).tolist() for s, e in zip(ch.starts, ch.ends, strict=True)]


def tomoe(limit: int) -> list[list[list[list[float]]]]:
    """The first ``limit`` drawings of the Tomoe set (a tiny inline parse; README format)."""
    if not TOMOE.is_file():
        return []
    drawings = []
    for block in TOMOE.read_text(encoding="utf-8").strip().split("\n\n")[:limit]:
        lines = block.strip().splitlines()[2:]
        points = [re.findall(r"\((-?\d+) (-?\d+)\)", line) for line in lines]
        drawings.append([[[float(x), float(y)] for x, y in s] for s in points if s])
    return drawings


def on_pad(strokes, margin: float = 30.0) -> list[list[list[float]]]:
    """Strokes scaled into the pad, keeping their aspect ratio."""
    points = np.concatenate([np.asarray(s) for s in strokes])
    lo, hi = points.min(0), points.max(0)
    scale = (PAD - 2 * margin) / max(float((hi - lo).max()), 1e-9)
    return [((np.asarray(s) - lo) * scale + margin).round(1).tolist() for s in strokes]


@pytest.fixture(scope="module")
def run():
    return deploy_run()[1]


@pytest.fixture(scope="module")
def sites(run, tmp_path_factory):
    """The INT8 site and the float site."""
    out = tmp_path_factory.mktemp("sites")
    built = {}
    for variant in ("int8", "float"):
        cfg = web_cfg([f"run_dir={run}", f"out={out / variant}", f"variant={variant}"])
        try:
            built[variant] = (out / variant, build(cfg))
        except WebError as exc:  # no npm, or no registry, and nothing cached
            unavailable(str(exc))
    return built


def unavailable(reason: str) -> None:
    """Fail under CI (the browser tests must run there), skip with the reason elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium():
    reason = browser.missing()
    if reason:
        unavailable(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chrome = browser.launch(p)
        yield chrome
        chrome.close()


class Page:
    """A served site open in a browser tab; every request it makes is recorded."""

    def __init__(self, chromium, folder: Path):
        self.server = Background(folder)
        self.url = self.server.__enter__()
        self.tab = chromium.new_page(viewport={"width": 900, "height": 800})
        self.requests: list[str] = []
        self.tab.on("request", lambda r: self.requests.append(r.url))
        self.tab.goto(self.url)

    def ready(self):
        return self.tab.evaluate("() => window.kanjiLab.ready")

    def draw(self, strokes, pointer: str = "mouse") -> None:
        """Draw stroke by stroke; after each stroke wait until the list shows that drawing."""
        box = self.tab.locator("#pad").bounding_box()
        border = self.tab.evaluate("() => document.getElementById('pad').clientLeft")
        box = {"x": box["x"] + border, "y": box["y"] + border}
        for n, stroke in enumerate(strokes, 1):
            if pointer == "mouse":
                self.tab.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
                self.tab.mouse.down()
                for x, y in stroke[1:]:
                    self.tab.mouse.move(box["x"] + x, box["y"] + y)
                self.tab.mouse.up()
            else:
                self.tab.evaluate(DISPATCH, {"points": stroke, "type": pointer})
            self.wait_for_list(n)

    def wait_for_list(self, n: int) -> None:
        self.tab.wait_for_function(
            "n => document.getElementById('candidates').dataset.strokes === String(n)", arg=n
        )

    def candidates(self) -> list[str]:
        return self.tab.locator("#candidates li").all_inner_texts()

    def recognize(self, strokes, k: int = 10):
        return self.tab.evaluate("([s, k]) => window.kanjiLab.recognize(s, k)", [strokes, k])

    def close(self) -> None:
        self.tab.close()
        self.server.__exit__()


PREPROCESS = "ds => ds.map(d => Array.from(window.kanjiLab.preprocess(d)))"
# synthetic PointerEvents of a pen or a finger (page.mouse only makes mouse events)
DISPATCH = """({points, type}) => {
  const pad = document.getElementById('pad');
  const box = pad.getBoundingClientRect();
  const at = ([x, y], kind) => pad.dispatchEvent(new PointerEvent(kind, {
    pointerId: 7, pointerType: type, isPrimary: true, bubbles: true, pressure: 0.5,
    clientX: box.left + pad.clientLeft + x, clientY: box.top + pad.clientTop + y,
    button: 0, buttons: kind === 'pointerup' ? 0 : 1,
  }));
  at(points[0], 'pointerdown');
  for (const p of points.slice(1)) at(p, 'pointermove');
  at(points[points.length - 1], 'pointerup');
}"""


@pytest.fixture
def page(chromium, sites):
    opened = Page(chromium, sites["int8"][0])
    yield opened
    opened.close()


def python_topk(model: Path, strokes, k: int = 10):
    """What Python computes for the same strokes: strokes_input, then ONNX Runtime."""
    x = (strokes_input([np.asarray(s) for s in strokes]).astype(np.float32) / 127.5 - 1)[None, None]
    return top_k(run_session(_session(model), x), labels_of(model), k)[0]


@functools.cache
def _session(model: Path):
    return session(model)


@functools.cache
def labels_of(model: Path) -> list[str]:
    return read_metadata(model)["labels"]


def test_site_holds_only_what_the_page_needs(sites, run):
    folder, info = sites["int8"]
    files = set(info["site_bytes"])
    assert files == {
        *PAGE_FILES,
        f"ort/{BUNDLE}",
        f"ort/{WASM}",
        "model/model.int8.onnx",
        "model/model.json",
    }
    manifest = json.loads((folder / "model/model.json").read_text())
    assert manifest["classes"] == len(manifest["labels"]) == 5
    model = folder / "model/model.int8.onnx"
    assert manifest["preprocessing"] == read_metadata(model)["preprocessing"]  # the model's own
    assert (folder / "model/model.int8.onnx").read_bytes() == (run / "model.int8.onnx").read_bytes()
    assert "model/model.onnx" in sites["float"][1]["site_bytes"]
    for name in ("index.html", "app.js"):  # nothing is fetched from elsewhere
        assert not re.search(r"https?://", _code(folder / name)), name


def _code(path: Path) -> str:
    """A page file without its comments (which may name web addresses)."""
    text = path.read_text()
    return re.sub(r"^\s*//.*$", "", text, flags=re.M)


def test_page_draw_undo_clear(page, sites):
    info = page.ready()
    assert info["classes"] == 5 and info["variant"] == "int8"
    facts = page.tab.locator("#model-info").inner_text()
    assert info["name"] in facts and "int8" in facts and "5" in facts and " MB" in facts
    model = sites["int8"][0] / "model/model.int8.onnx"
    strokes = on_pad(kanjivg("愛"))
    page.draw(strokes)
    shown = page.candidates()
    assert len(shown) == 5 and set(shown) == set(labels_of(model))
    drawn = page.tab.evaluate("() => window.kanjiLab.strokes")
    assert len(drawn) == len(strokes)
    # the list is what recognize() gives for the drawn strokes, and what Python gives
    assert [r["char"] for r in page.recognize(drawn)] == shown
    assert [r["char"] for r in python_topk(model, drawn)] == shown
    assert "ms" in page.tab.locator("#timing").inner_text()
    page.tab.click("#undo")
    page.wait_for_list(len(strokes) - 1)
    assert page.candidates() == [r["char"] for r in page.recognize(drawn[:-1])]
    page.tab.click("#clear")
    page.wait_for_list(0)
    assert page.candidates() == []
    assert page.tab.evaluate(
        "() => [window.kanjiLab.strokes.length, window.kanjiLab.lastResult]"
    ) == [0, None]
    assert all(url.startswith(page.url) for url in page.requests), page.requests


@pytest.mark.parametrize("pointer", ["pen", "touch"])
def test_pen_and_touch(page, pointer):
    page.ready()
    strokes = on_pad(kanjivg("安"))
    page.draw(strokes, pointer)
    drawn = page.tab.evaluate("() => window.kanjiLab.strokes")
    assert len(drawn) == len(strokes)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(drawn, strokes, strict=True))
    assert page.candidates() == [r["char"] for r in page.recognize(strokes)]


def test_click_copies(page):
    page.ready()
    page.tab.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.draw(on_pad(kanjivg("以")))
    first = page.tab.locator("#candidates li").first
    first.click()
    assert page.tab.evaluate("() => navigator.clipboard.readText()") == first.inner_text()


def test_preprocessing_and_top1_parity(page, sites):
    """The browser's model input equals Python's strokes_input; top-1 agrees, INT8 and float."""
    page.ready()
    drawings = [kanjivg(c) for c in KANJIVG_CHARS] + tomoe(40)
    drawings = [on_pad(d) for d in drawings]
    got = np.array(page.tab.evaluate(PREPROCESS, drawings))
    want = np.stack([strokes_input([np.asarray(s) for s in d]) for d in drawings])
    diff = np.abs(got - (want.reshape(len(drawings), -1).astype(np.float32) / 127.5 - 1))
    assert diff.max() <= MAX_ABS and diff.mean() <= MEAN_ABS, (diff.max(), diff.mean())
    for variant, (folder, _) in sites.items():
        other = Page(page.tab.context.browser, folder) if variant != "int8" else page
        other.ready()
        tops = other.tab.evaluate(
            "async ds => { const out = []; for (const d of ds) "
            "out.push((await window.kanjiLab.recognize(d, 1))[0].char); return out; }",
            drawings,
        )
        model = folder / f"model/{'model.int8.onnx' if variant == 'int8' else 'model.onnx'}"
        python = [python_topk(model, d, 1)[0]["char"] for d in drawings]
        assert tops == python, variant
        if other is not page:
            other.close()


@pytest.mark.parametrize(
    "changed",
    [
        {"pen": 0.09, "margin": 0.15, "trim": 0.01},
        {"pen": 0.012, "min_width": 2.6},  # a pen so thin that the minimum line width applies
    ],
)
def test_settings_come_from_the_model(chromium, sites, tmp_path, monkeypatch, changed):
    """Other pen, margin or line width in the model's description: the page follows them, like
    Python."""
    folder = tmp_path / "site"
    shutil.copytree(sites["int8"][0], folder)
    manifest = json.loads((folder / "model/model.json").read_text())
    manifest["preprocessing"]["normalize"].update(changed)
    (folder / "model/model.json").write_text(json.dumps(manifest, ensure_ascii=False))
    for key, value in changed.items():
        monkeypatch.setitem(normalize.SETTINGS, key, value)
    drawings = [on_pad(kanjivg(c)) for c in KANJIVG_CHARS[:6]]
    want = np.stack([strokes_input([np.asarray(s) for s in d]) for d in drawings])
    opened = Page(chromium, folder)
    try:
        opened.ready()
        got = np.array(opened.tab.evaluate(PREPROCESS, drawings))
    finally:
        opened.close()
    diff = np.abs(got - (want.reshape(len(drawings), -1).astype(np.float32) / 127.5 - 1))
    assert diff.max() <= MAX_ABS and diff.mean() <= MEAN_ABS, (diff.max(), diff.mean())


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_model_that_fails_to_load_says_so(chromium, sites, tmp_path, damage):
    folder = tmp_path / "site"
    shutil.copytree(sites["int8"][0], folder)
    model = folder / "model/model.int8.onnx"
    if damage == "corrupt":
        model.write_bytes(b"this is not an ONNX model" * 10)
    else:
        model.unlink()
    opened = Page(chromium, folder)
    try:
        message = opened.tab.evaluate(
            "() => window.kanjiLab.ready.then(() => 'resolved', e => e.message)"
        )
        assert "model/model.int8.onnx" in message and "could not be" in message, message
        status = opened.tab.locator("#status")
        assert "error" in status.get_attribute("class")
        assert "could not start" in status.inner_text() and "model.int8.onnx" in status.inner_text()
        if damage == "missing":
            assert "HTTP 404" in message
    finally:
        opened.close()


def test_bad_options_and_missing_npm(run, tmp_path, monkeypatch):
    with pytest.raises(WebError, match="unknown variant"):
        build(web_cfg([f"run_dir={run}", f"out={tmp_path / 's'}", "variant=fp16"]))
    from kanji_lab.run_dir import RunDirError

    with pytest.raises(RunDirError, match="kanji_lab.export"):
        build(web_cfg([f"run_dir={tmp_path}", f"out={tmp_path / 's'}"]))
    # no node/npm on PATH and nothing cached: the message says how to install them
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    cfg = web_cfg([f"run_dir={run}", f"out={tmp_path / 's'}", f"npm.cache_dir={tmp_path / 'npm'}"])
    with pytest.raises(WebError, match="Node.js and npm are needed.*apt-get install nodejs npm"):
        build(cfg)


def test_command_line_without_npm(run, tmp_path):
    """No npm on PATH and nothing cached: exit status 2 and one line that says what to do (the
    successful build is the same code, run by the fixture above)."""
    command = [sys.executable, "-m", "kanji_lab.web", f"run_dir={run}", f"out={tmp_path / 'site'}"]
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run(
        [*command, f"npm.cache_dir={tmp_path / 'npm'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 2 and "Install them" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "site").exists()


@pytest.mark.slow
def test_command_line_builds_and_serves(run, tmp_path):
    """``serve=true`` writes the site and serves it on 127.0.0.1 until stopped."""
    import urllib.request

    command = [sys.executable, "-m", "kanji_lab.web", f"run_dir={run}", f"out={tmp_path / 'site'}"]
    server = subprocess.Popen(
        [*command, "serve=true", "port=0"], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        lines = [server.stdout.readline(), server.stdout.readline()]
        assert lines[0].startswith("wrote ") and "5 classes" in lines[0], lines
        url = re.search(r"at (http://127\.0\.0\.1:\d+/)", lines[1]).group(1)
        with urllib.request.urlopen(url + "model/model.json") as response:
            assert json.load(response)["classes"] == 5
        with urllib.request.urlopen(url + f"ort/{WASM}") as response:
            assert response.headers["Content-Type"] == "application/wasm"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_prior_weight_in_the_page_matches_python(page, sites):
    """The site carries the log prior of every class; ``kanjiLab.priorWeight`` starts at the
    site's ``prior=`` (0) and, when set, gives Python's ``top_k(..., prior=w)``, probabilities
    included."""
    manifest = json.loads((sites["int8"][0] / "model/model.json").read_text())
    assert manifest["prior"]["weight"] == 0.0
    assert len(manifest["prior"]["log"]) == manifest["classes"]
    page.ready()
    assert page.tab.evaluate("() => window.kanjiLab.priorWeight") == 0
    model = sites["int8"][0] / "model/model.int8.onnx"
    drawing = on_pad(kanjivg(KANJIVG_CHARS[0]))
    x = (strokes_input([np.asarray(s) for s in drawing]).astype(np.float32) / 127.5 - 1)[None, None]
    logits = run_session(_session(model), x)
    for weight in (0.0, 2.0):
        got = page.tab.evaluate(
            "async ([d, w]) => { window.kanjiLab.priorWeight = w; "
            "return await window.kanjiLab.recognize(d, 5); }",
            [drawing, weight],
        )
        want = top_k(logits, labels_of(model), 5, prior=weight)[0]
        assert [g["char"] for g in got] == [w["char"] for w in want], weight
        assert np.allclose([g["prob"] for g in got], [w["prob"] for w in want], atol=2e-3)


def test_site_without_a_run_uses_the_shipped_model(run, tmp_path, monkeypatch):
    """``python -m kanji_lab.web out=site``: no run_dir, the default model of the package's
    registry (here one pointing at the tiny run's INT8 file)."""
    import shutil

    from kanji_lab import recognizer
    from kanji_lab.run_dir import RunDirError

    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"models": []}), "utf-8")
    monkeypatch.setattr(recognizer, "REGISTRY", registry)
    with pytest.raises(RunDirError, match="no model is shipped"):
        build(web_cfg([f"out={tmp_path / 's'}"]))
    shutil.copyfile(run / "model.int8.onnx", tmp_path / "tiny.int8.onnx")
    labels = json.loads((run / "labels.json").read_text("utf-8"))["labels"]
    entry = {"name": "tiny", "file": "tiny.int8.onnx", "classes": len(labels)}
    registry.write_text(json.dumps({"models": [entry]}), "utf-8")
    info = build(web_cfg([f"out={tmp_path / 'site'}"]))
    assert info["name"] == "tiny" and info["labels"] == labels
    assert (tmp_path / "site" / info["file"]).read_bytes() == (run / "model.int8.onnx").read_bytes()
    with pytest.raises(WebError, match="shipped models are INT8"):
        build(web_cfg([f"out={tmp_path / 's'}", "variant=float"]))
