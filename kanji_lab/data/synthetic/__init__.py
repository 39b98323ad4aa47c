"""The built-in synthetic data source (``data=synthetic``): handwriting generated on first use.

Each synthetic writer is one style seed of a family (``data.writers.<family>`` writers each).
Hand-drawn families draw KanjiVG strokes (see :mod:`kanji_lab.data.synthetic.render`):

- ``pen``: even lines, small pressure changes;
- ``pencil``: faint, grainy, unsteady lines;
- ``brush``: width that changes along the stroke, entry press, tome / hane / harai endings,
  dry-brush gaps;
- ``cursive``: fast semi-cursive, rounded and simplified strokes joined by thin trails;
- ``touch``: finger or stylus on a screen: thin even lines, slightly wobbly, written large or
  small on the pad, often stored binary.

Each writer has its own slant, size, thickness, per-stroke looseness (each stroke turned and
stretched on its own) and proportions (parts of a character wider or narrower); each sample adds
its own distortion and a scan (blur, noise, grey levels or binarisation, resolution). ``font``
writers copy glyphs of the configured fonts with distortion and ``print`` writers scan them as
printed text (exact glyphs, blur, noise, threshold, low resolution; see
:mod:`kanji_lab.data.synthetic.fonts`). ``form`` writers (a pen, pencil, cursive or brush hand)
write in the cells of a sheet, each character cut out with fragments of its neighbours and
sometimes the sheet's grid (see :mod:`kanji_lab.data.forms`). Every image then goes through the
shared normalisation (:func:`kanji_lab.data.normalize.normalize_ink`).
Every writer writes every class once (each kana ``data.kana_copies`` times, drawn anew, except a
kana that one image cannot tell from a more common look-alike, such as a small kana:
:func:`kanji_lab.data.charsets.yielding_twins`); its family
becomes the sample's source name (``synthetic/brush``), so results can be reported per style
family.

Generation is deterministic: sample ``(writer, character)`` draws its randomness from
``(seed, writer id, code point)`` only, so the arrays do not depend on the number of processes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from kanji_lab.data import cache, cache_writer, forms, kanjivg
from kanji_lab.data.charsets import resolve_classes, yielding_twins
from kanji_lab.data.normalize import SETTINGS, linear, normalize_ink
from kanji_lab.data.sources import register
from kanji_lab.data.splits import SPLITS, split_indices
from kanji_lab.data.synthetic import fonts, render
from kanji_lab.errors import DataSourceError

GENERATOR_VERSION = 9  # bump when the generated images change, so stale caches are rebuilt
BLOCK = 256  # characters per task sent to a worker process
_STYLE_STREAM = 0x110000  # above every code point: the writer's own style stream
_SHEET_STREAM = 0x110001  # a form writer's sheet layout
_HELDOUT_STREAM = 0x110002  # which classes a validation or test writer writes

# Per process: the strokes of every class, set before generating.
_STROKES: dict[str, kanjivg.Character] = {}
_FONTS: list[
    str
] = []  # a worker's font files: every writer draws classes without strokes from them

# seed, writer id, family, font file or "", (character, copy) pairs
Task = tuple[int, int, str, str, tuple[tuple[str, int], ...]]


@register("synthetic")
def build(cfg: DictConfig, progress: bool = True) -> Path:
    """Return the synthetic cache folder for ``cfg``, generating it when missing or stale."""
    classes = _classes(cfg)
    writers = _writer_counts(cfg)
    fingerprint = _fingerprint(cfg, classes, writers)
    digest = hashlib.sha1(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:12]
    folder = Path(str(cfg.cache_dir)) / f"synthetic-{digest}"
    if cache.is_complete(folder, fingerprint):
        return folder
    start = time.perf_counter()
    data = generate(cfg, classes, writers, progress)
    data.info["seconds"] = round(time.perf_counter() - start, 1)
    return cache_writer.write_cache(folder, data, fingerprint)


def generate(
    cfg: DictConfig, classes: list[str], writers: dict[str, int], progress: bool
) -> cache.CharacterSet:
    """Generate every writer's copy of every class."""
    all_strokes = {c: s for c in classes if (s := kanjivg.load_strokes(c)) is not None}
    font_writers = max(writers[f] for f in render.FONT_FAMILIES)
    font_only = [c for c in classes if c not in all_strokes]
    font_files = _font_files(cfg) if font_writers or font_only else []
    if font_only:
        _check_fallback(font_only, font_files)
    copies = _kana_copies(cfg)
    shares = held_out_shares(cfg, writers)
    tasks = list(_tasks(_seed(cfg), classes, writers, font_files, all_strokes, copies, shares))
    n_workers = int(cfg.get("workers", 0)) or os.cpu_count() or 1
    families = [f for f in render.FAMILIES if writers[f]]
    total = sum(len(task[4]) for task in tasks)  # at most: fonts may lack a few glyphs
    size = cache.IMAGE_SIZE
    images = np.empty((total, size, size), dtype=np.uint8)
    codepoints = np.empty(total, dtype=np.int32)
    writer_ids = np.empty(total, dtype=np.int32)
    source_ids = np.empty(total, dtype=np.int16)
    done = 0
    results = _run(tasks, all_strokes, font_files, n_workers)
    with tqdm(total=total, desc="synthetic data", unit="img", disable=not progress) as bar:
        for task, (block, codes) in zip(tasks, results, strict=True):
            stop = done + len(block)
            images[done:stop], codepoints[done:stop] = block, codes
            writer_ids[done:stop] = task[1]
            source_ids[done:stop] = families.index(task[2])
            done = stop
            bar.update(len(task[4]))
    return cache.CharacterSet(
        images=images[:done],
        codepoints=codepoints[:done],
        writers=writer_ids[:done],
        sources=source_ids[:done],
        source_names=[f"synthetic/{f}" for f in families],
        info={"writers": writers, "classes": len(classes), "font_only": "".join(font_only)},
    )


def render_task(task: Task) -> tuple[np.ndarray, np.ndarray]:
    """Render one block of characters for one writer: images and their code points."""
    seed, writer, family, font_file, chars = task
    fallback = _FONTS[writer % len(_FONTS)] if _FONTS else ""
    style_rng = np.random.default_rng([seed, writer, _STYLE_STREAM])
    hand = str(style_rng.choice(render.FORM_HANDS)) if family == "form" else family
    style = render.writer_style(hand, style_rng)
    drawn = linear() if family == "form" else None  # a form's cells are normalised once cut
    images, codepoints = [], []
    for char, copy in chars:
        key = [seed, writer, ord(char)] + ([copy] if copy else [])
        rng = np.random.default_rng(key)
        if font_file or char not in _STROKES:  # no strokes: the writer's hand over a font glyph
            glyph = fonts.glyph_image(font_file or fallback, char, _weight(style, font_file, rng))
            if glyph is None:
                continue
            image = fonts.render_glyph(glyph, style, rng, drawn)
        else:
            image = render.render_strokes(_STROKES[char], style, rng, drawn)
        images.append(image)
        codepoints.append(ord(char))
    empty = np.zeros((0, cache.IMAGE_SIZE, cache.IMAGE_SIZE), dtype=np.uint8)
    stacked = np.stack(images) if images else empty
    if family == "form" and len(stacked) > 1:
        sheet = np.random.default_rng([seed, writer, _SHEET_STREAM, codepoints[0]])
        stacked = np.stack([normalize_ink(cell) for cell in forms.cut_cells(stacked, sheet)])
    return stacked, np.array(codepoints, dtype=np.int32)


def _weight(style: render.WriterStyle, font_file: str, rng: np.random.Generator) -> int:
    """Emboldening pixels of one glyph: a font writer's weight varies by a pixel from sample to
    sample (each font is then seen thin and bold, as print comes in many weights of one design);
    a hand writing a class without strokes keeps its own line width."""
    if not font_file:
        return int(style.thickness)
    return max(0, int(style.thickness) + int(rng.integers(-1, 2)))


def _init_worker(all_strokes: dict[str, kanjivg.Character], font_files: list[str]) -> None:
    global _STROKES, _FONTS
    _STROKES, _FONTS = all_strokes, font_files


def _run(
    tasks: list[Task],
    all_strokes: dict[str, kanjivg.Character],
    font_files: list[str],
    n_workers: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Results of ``tasks`` in order, from a pool of ``n_workers`` processes (or this one)."""
    if n_workers <= 1 or len(tasks) <= 1:
        _init_worker(all_strokes, font_files)
        yield from map(render_task, tasks)
        return
    # fork where there is one: workers only draw images (no torch, no threads), and unlike spawn
    # it does not re-run a calling script that lacks an ``if __name__ == "__main__"`` guard
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(
        n_workers, initializer=_init_worker, initargs=(all_strokes, font_files)
    ) as pool:
        yield from pool.imap(render_task, tasks)


def _tasks(
    seed: int,
    classes: list[str],
    writers: dict[str, int],
    font_files: list[str],
    all_strokes: dict[str, kanjivg.Character],
    kana_copies: int = 1,
    shares: dict[int, float] | None = None,
) -> Iterator[Task]:
    """Blocks of work: writers numbered family by family, each writing every class it can (kana
    ``kana_copies`` times, each copy drawn anew, but a kana that yields to a look-alike twin once):
    with fonts, every class; without, those with KanjiVG strokes. A writer with a share in
    ``shares`` (a validation or test writer) writes that share of them, a random subset."""
    drawable = classes if font_files else [c for c in classes if c in all_strokes]
    yielding = yielding_twins(classes)
    shares = shares or {}
    writer = 0
    for family in render.FAMILIES:
        for k in range(writers[family]):
            font_file = font_files[k % len(font_files)] if family in render.FONT_FAMILIES else ""
            chars = [(c, copy) for c in drawable
                     for copy in range(_copies(c, kana_copies, yielding))]  # fmt: skip
            if writer in shares:
                kept = np.random.default_rng([seed, writer, _HELDOUT_STREAM]).random(len(chars))
                chars = [item for item, u in zip(chars, kept, strict=True) if u < shares[writer]]
            for start in range(0, len(chars), BLOCK):
                yield seed, writer, family, font_file, tuple(chars[start : start + BLOCK])
            writer += 1


def held_out_shares(cfg: DictConfig, writers: dict[str, int]) -> dict[int, float]:
    """Writer id -> share of the classes it writes, for the validation and test writers that
    ``data.split`` will hold out (the same split the data module makes: writers numbered family by
    family, stratified by family) when ``data.heldout_classes`` gives a share below 1. They only
    measure, so writing fewer images saves generation and evaluation time. Empty when splitting by
    sample or when no share is set."""
    given = cfg.get("heldout_classes") or {}
    split = cfg.get("split") or {}
    unknown = sorted(set(given) - {"val", "test"})
    if unknown:
        raise DataSourceError(f"data.heldout_classes takes val and test, not {unknown}")
    shares = {name: float(given[name]) for name in given if given[name] is not None}
    if any(not 0 < share <= 1 for share in shares.values()):
        raise DataSourceError(f"data.heldout_classes shares must be in (0, 1], got {shares}")
    if split.get("by", "writer") != "writer" or not shares:
        return {}
    families = [f for f in render.FAMILIES if writers[f]]
    per_writer = [families.index(f) for f in families for _ in range(writers[f])]
    ids = np.arange(len(per_writer))
    assigned = split_indices(
        ids,
        np.array(per_writer),
        val=split.get("val", 0.1),
        test=split.get("test", 0.1),
        seed=split.get("seed", 0),
    )
    return {
        int(w): shares[name]
        for name in SPLITS
        if shares.get(name, 1.0) < 1
        for w in ids[assigned[name]]
    }


def _copies(char: str, kana_copies: int, yielding: set[str]) -> int:
    return kana_copies if is_kana(char) and char not in yielding else 1


def is_kana(char: str) -> bool:
    return "\u3041" <= char <= "\u30ff"


def _kana_copies(cfg: DictConfig) -> int:
    copies = cfg.get("kana_copies")
    copies = 1 if copies is None else int(copies)
    if copies < 1:
        raise DataSourceError(f"data.kana_copies must be at least 1, got {copies}")
    return copies


def _seed(cfg: DictConfig) -> int:
    seed = int(cfg.seed)
    if seed < 0:
        raise DataSourceError(f"data.seed must be a non-negative integer, got {seed}")
    return seed


def _classes(cfg: DictConfig) -> list[str]:
    try:
        classes = resolve_classes(cfg.get("classes"))
    except ValueError as error:
        raise DataSourceError(str(error)) from None
    if not classes:
        raise DataSourceError("data.classes gives no characters; name a set or list characters")
    return classes


def _writer_counts(cfg: DictConfig) -> dict[str, int]:
    """Writers per family from ``cfg.writers``; unknown families and an empty total are errors."""
    given = OmegaConf.to_container(cfg.get("writers") or OmegaConf.create({}), resolve=True)
    unknown = sorted(set(given) - set(render.FAMILIES))
    if unknown:
        raise DataSourceError(
            f"unknown writer families {unknown} in data.writers; known: {list(render.FAMILIES)}"
        )
    counts = {family: int(given.get(family) or 0) for family in render.FAMILIES}
    if min(counts.values()) < 0 or not sum(counts.values()):
        raise DataSourceError(
            f"data.writers must give a non-negative count per family and at least one writer, "
            f"got {counts}"
        )
    return counts


def _font_files(cfg: DictConfig) -> list[str]:
    """Resolve ``cfg.fonts`` (package + path) to font files, with errors saying what to install."""
    specs = list(cfg.get("fonts") or [])
    if not specs:
        raise DataSourceError(
            "font writers (data.writers.font, data.writers.print) and classes without KanjiVG "
            "strokes need at least one font in data.fonts"
        )
    files = []
    for spec in specs:
        try:
            files.append(str(fonts.resolve_font(str(spec["package"]), str(spec["path"]))))
        except fonts.FontNotFound as error:
            raise DataSourceError(str(error)) from None
    return files


def _check_fallback(font_only: list[str], font_files: list[str]) -> None:
    """Classes without KanjiVG strokes are drawn over a font glyph: some font must have them."""
    no_glyph = [c for c in font_only if not any(fonts.has_glyph(f, c) for f in font_files)]
    if no_glyph:
        raise DataSourceError(
            f"{len(no_glyph)} classes have neither KanjiVG stroke data nor a glyph in data.fonts: "
            f"{''.join(no_glyph[:50])}. Remove them from data.classes or add a font that has them."
        )


def _fingerprint(cfg: DictConfig, classes: list[str], writers: dict[str, int]) -> dict[str, Any]:
    """Everything the generated arrays depend on (not the number of processes)."""
    font_specs = [f"{f['package']}/{f['path']}" for f in cfg.get("fonts") or []]
    return {
        "source": "synthetic",
        "generator": GENERATOR_VERSION,
        "normalize": SETTINGS,
        "kanjivg": importlib.metadata.version("kanjivg"),
        "seed": _seed(cfg),
        "kana_copies": _kana_copies(cfg),
        "writers": writers,
        "fonts": font_specs if any(writers[f] for f in render.FONT_FAMILIES) else [],
        "classes": hashlib.sha1("".join(classes).encode()).hexdigest(),
        "heldout": {str(w): share for w, share in held_out_shares(cfg, writers).items()},
    }
