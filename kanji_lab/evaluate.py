"""``python -m kanji_lab.evaluate run_dir=<run> data=<source>``: score a finished run's model.

Which samples (:func:`choose_split`, :func:`writers_split`): without ``data=`` the run's own data
and its test split; with another source every sample, except on a source that shares writers with
the training data (``data=etl9b`` for an ``etl9g`` run, ``etl9g`` for a ``combined_all_etl`` run,
synthetic data of the run's generator seed): then only the writers the run neither trained nor
validated on (split ``unseen_writers``), said in the log and in ``metrics.json`` ``writers_note``,
and refused when the training data cannot be opened to tell them apart. ``split=train|val|test``
overrides; ``split=all`` scores every sample and notes how many came from training writers.

``metrics.json`` (in ``outputs/evaluate/runs/<time>/``): top-1, top-5, accuracy per source (style
family or ETL part) and per class, the most confused pairs (``confusions``); samples whose
character is not in the model's vocabulary are counted and listed apart (``out_of_vocabulary``),
never scored as errors. ``prior=<weight>`` or a list adds ``"prior": [{"weight", "top1"}]`` under
the character-frequency prior (:mod:`kanji_lab.prior`); the plain ``top1`` is always the model
alone. ``zero_shot.classes`` (HierCode only; models with a weight row per class refuse it) adds
characters to the labels, coded from the slots training knows (slots it never saw are listed), and
reports them under ``zero_shot``: top-1 and top-5 among all classes and among the unseen ones only,
each with its chance level.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from tqdm import tqdm

from kanji_lab.atomic import write_json
from kanji_lab.config import config_dir
from kanji_lab.data.charsets import look_alike_confusions, resolve_classes, script_of
from kanji_lab.data.datamodule import CharacterDataModule, model_input
from kanji_lab.data.normalize import SETTINGS as NORMALIZE_SETTINGS
from kanji_lab.deploy.weights import WEIGHTS_FILE, load_weights
from kanji_lab.errors import DataSourceError, reports_user_errors
from kanji_lab.prior import checked_weight, log_prior, rescore
from kanji_lab.run_dir import CONFIG_FILE, RunDirError

log = logging.getLogger(__name__)


def load_run_model(run_dir: Path) -> tuple[torch.nn.Module, list[str], DictConfig]:
    """The network of a finished run's model file, its labels and training config (for a run's
    Lightning checkpoint and data, see :func:`kanji_lab.notebook.load_run`)."""
    run_dir = Path(run_dir)
    weights = run_dir / WEIGHTS_FILE
    if not run_dir.is_dir():
        raise RunDirError(f"run_dir={run_dir}: no such directory")
    if not weights.is_file():
        raise RunDirError(
            f"run_dir={run_dir}: no {WEIGHTS_FILE}; pass the directory of a training run that "
            "finished (runs go under outputs/train/runs/ by default)"
        )
    net, meta = load_weights(weights)
    warn_if_normalised_otherwise(meta["preprocessing"].get("normalize"))
    train_cfg = OmegaConf.load(run_dir / CONFIG_FILE)
    return net, meta["labels"], train_cfg


def warn_if_normalised_otherwise(trained: dict[str, Any] | None) -> None:
    """Data sources normalise with this version's settings; say so when the model's differ."""
    if trained != NORMALIZE_SETTINGS:
        log.warning(
            "the model was trained on images normalised with %s, the data is normalised with %s "
            "(this version): scores may be lower than the model can reach",
            trained or "an earlier version's settings",
            NORMALIZE_SETTINGS,
        )


def choose_split(requested: str, data: DictConfig, trained_on: DictConfig) -> str:
    """``auto``: the test split of the training data, all samples of any other data."""
    if requested != "auto":
        return requested
    same = _identity(data) == _identity(trained_on)
    return "test" if same else "all"


def writer_families(data: DictConfig, source_names: list[str]) -> set[str]:
    """The writer populations of a dataset, named so that two datasets with a name in common
    hold the same hands under the same writer ids: an ETL family (``ETL9``: ETL9G and ETL9B,
    whose ids are global, :data:`kanji_lab.data.etl.WRITER_BLOCK`), or the synthetic generator's
    seed (writer ``k`` of seed ``s`` has one style whatever classes it writes)."""
    from kanji_lab.data import etl

    families = {etl.PARTS[n].family for n in source_names if n in etl.PARTS}
    if any(n.startswith("synthetic/") for n in source_names):
        families.add(f"synthetic seed {data.get('seed', 0)}")
    return families


def seen_writers(
    datamodule: CharacterDataModule, trained_on: DictConfig, labels: list[str]
) -> tuple[np.ndarray, np.ndarray, set[str]] | None:
    """When the evaluated data shares a writer population with the run's training data: the
    writer ids the run trained or validated on, its test writer ids and the shared populations.
    None when they share none."""
    families = writer_families(datamodule.cfg, datamodule.data.source_names)
    if not families:
        return None
    trained = CharacterDataModule(trained_on, labels=labels)
    try:
        trained.setup("fit")
    except DataSourceError as err:
        raise DataSourceError(
            f"data={datamodule.cfg.name} holds writers of {', '.join(sorted(families))}, which the "
            "run may have trained on, and its training data cannot be opened to tell which "
            f"({err}); pass split=all to score every sample knowingly"
        ) from err
    shared = families & writer_families(trained_on, trained.data.source_names)
    if not shared:
        return None
    writers = np.asarray(trained.data.writers)
    seen = np.union1d(writers[trained.splits["train"]], writers[trained.splits["val"]])
    return seen, np.unique(writers[trained.splits["test"]]), shared


def writers_split(
    requested: str,
    split: str,
    datamodule: CharacterDataModule,
    trained_on: DictConfig,
    labels: list[str],
) -> tuple[str, str | None]:
    """The split to score and a note on its writers (logged as a warning, kept in the metrics).

    ``split=auto`` on data that shares writers with the training data (``etl9b`` for an ``etl9g``
    run, ``etl9g`` for a ``combined_all_etl`` run, synthetic data of the run's generator seed with
    other classes, as in a zero-shot study) scores only the writers the run neither trained nor
    validated on (split ``unseen_writers``). An explicit split is scored as asked, with a note
    when some of its samples come from writers the run trained or validated on.
    """
    if requested == "auto" and split != "all":
        return split, None
    known = seen_writers(datamodule, trained_on, labels)
    if known is None:
        return split, None
    seen, test, shared = known
    rows = datamodule.splits[split]
    overlap = np.isin(np.asarray(datamodule.data.writers)[rows], seen)
    source = (
        f"data={datamodule.cfg.name} shares the {', '.join(sorted(shared))} writers with the "
        f"run's training data ({trained_on.name})"
    )
    if requested != "auto":
        if not overlap.any():
            return split, None
        return split, (
            f"{source}: {int(overlap.sum())} of the {len(rows)} samples of split={split} are by "
            "writers the run trained or validated on, so this is no score on unseen writers "
            "(split=auto scores only those it never saw)"
        )
    datamodule.splits["unseen_writers"] = rows[~overlap]
    return "unseen_writers", (
        f"{source}: scoring only the {int((~overlap).sum())} of {len(rows)} samples of writers "
        f"the run did not train or validate on (its {len(test)} test writers and any it never "
        "saw)"
    )


def _identity(data: DictConfig) -> dict[str, Any]:
    spec = OmegaConf.to_container(data, resolve=True)
    spec.pop("cache_dir", None)
    spec.pop("workers", None)
    return spec


@torch.no_grad()
def predict_split(
    net: torch.nn.Module,
    datamodule: CharacterDataModule,
    split: str,
    prior: np.ndarray | None = None,
    weights: list[float] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-5 predictions ``(N, k)``, targets ``(N,)`` (-1 = character not in the labels) and the
    top-1 under the log ``prior`` per class at each of ``weights`` ``(len(weights), N)``."""
    preds, targets, with_prior = [], [], []
    for images, target in tqdm(
        datamodule.loader(split, resident=False), desc=f"evaluate {split}", unit="batch"
    ):
        logits = net(model_input(images))
        preds.append(logits.topk(min(5, logits.shape[1]), dim=1).indices.numpy())
        targets.append(target.numpy())
        scored = [rescore(logits.numpy(), prior, w).argmax(axis=1) for w in weights]
        with_prior.append(np.stack(scored) if scored else np.empty((0, len(target)), np.int64))
    return np.concatenate(preds), np.concatenate(targets), np.concatenate(with_prior, axis=1)


def score(
    preds: np.ndarray,
    targets: np.ndarray,
    labels: list[str],
    codepoints: np.ndarray,
    sources: list[str],
    top: int,
) -> dict[str, Any]:
    """Top-1/top-5, accuracy per class and per source (style family or ETL part), and the most
    confused pairs; samples whose character is not in ``labels`` are counted apart (they can be
    neither right nor wrong). ``sources`` names each sample's source."""
    known = targets >= 0
    oov = Counter(chr(c) for c in codepoints[~known])
    p, t = preds[known], targets[known]
    hit1 = p[:, 0] == t
    hit5 = (p == t[:, None]).any(axis=1)
    per_class = {}
    for cls in np.unique(t):
        mask = t == cls
        per_class[labels[cls]] = {"n": int(mask.sum()), "acc": float(hit1[mask].mean())}
    wrong = zip(t[~hit1].tolist(), p[~hit1, 0].tolist(), strict=True)
    pairs = Counter(wrong).most_common(top)
    per_source = accuracy_by(np.asarray(sources)[known], hit1)
    per_script = accuracy_by(np.array([script_of(labels[c]) for c in t], dtype=object), hit1)
    return {
        "samples": int(len(targets)),
        "scored": int(known.sum()),
        "top1": float(hit1.mean()) if len(t) else None,
        "top5": float(hit5.mean()) if len(t) else None,
        "out_of_vocabulary": {"samples": int((~known).sum()), "characters": dict(oov)},
        "confused_pairs": [
            {"true": labels[a], "predicted": labels[b], "count": n} for (a, b), n in pairs
        ],
        "per_source": per_source,
        "per_script": per_script,
        "look_alikes": look_alike_confusions(t, p[:, 0], labels),
        "per_class": per_class,
    }


def accuracy_by(groups: np.ndarray, hit: np.ndarray) -> dict[str, dict[str, float | int]]:
    """Sample count and top-1 of each group (a source, a script) of the scored samples."""
    return {
        str(name): {"n": int(mask.sum()), "acc": float(hit[mask].mean())}
        for name in sorted(set(groups.tolist()))
        for mask in [groups == name]
    }


def add_unseen_classes(
    net: torch.nn.Module, labels: list[str], spec: str | None
) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """``zero_shot.classes``: extend a model that composes its classes (``extend_labels``) with
    characters it was not trained on. Returns the labels, the added characters and, per added
    character, the parts of its code that training never saw."""
    if not spec:
        return labels, [], {}
    if not hasattr(net, "extend_labels"):
        raise RunDirError(
            f"zero_shot.classes: this model ({type(net).__name__}) has one weight row per class "
            "and cannot score characters it was not trained on; use a model=hiercode run"
        )
    unseen = [c for c in resolve_classes(spec, "zero_shot.classes") if c not in labels]
    unknown = net.extend_labels(unseen)
    return [*labels, *unseen], unseen, unknown


class _Restricted(torch.nn.Module):
    """A network whose scores outside ``keep`` (class indices) are -inf."""

    def __init__(self, net: torch.nn.Module, keep: list[int], classes: int) -> None:
        super().__init__()
        self.net = net
        self.mask = torch.ones(classes, dtype=torch.bool)
        self.mask[keep] = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).masked_fill(self.mask, float("-inf"))


def score_unseen(
    net: torch.nn.Module,
    datamodule: CharacterDataModule,
    split: str,
    hits: tuple[np.ndarray, np.ndarray],
    unseen: list[str],
    unknown: dict[str, list[str]],
) -> dict[str, Any]:
    """Accuracy on the samples of the added classes: among every class (generalized) and among
    the added classes only, with chance levels."""
    labels = datamodule.labels
    first = len(labels) - len(unseen)
    preds, targets = hits
    mask = targets >= first
    restricted = _Restricted(net, list(range(first, len(labels))), len(labels))
    only, _, _ = predict_split(restricted, datamodule, split)

    def acc(p: np.ndarray, k: int) -> float | None:
        if not mask.any():
            return None
        return float((p[mask, :k] == targets[mask, None]).any(axis=1).mean())

    return {
        "classes": len(unseen),
        "samples": int(mask.sum()),
        "top1": acc(preds, 1),
        "top5": acc(preds, 5),
        "chance_top1": 1 / len(labels),
        "unseen_only_top1": acc(only, 1),
        "unseen_only_top5": acc(only, 5),
        "unseen_only_chance_top1": 1 / len(unseen),
        "unknown_slots": {c: s for c, s in unknown.items() if s},
    }


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    net, labels, train_cfg = load_run_model(Path(cfg.run_dir))
    zero_shot = cfg.get("zero_shot") or {}
    labels, unseen, unknown = add_unseen_classes(net, labels, zero_shot.get("classes"))
    data = cfg.data if cfg.get("data") else train_cfg.data
    if not cfg.get("data"):
        with open_dict(data):
            data.cache_dir = cfg.paths.cache_dir
    split = choose_split(cfg.split, data, train_cfg.data)
    datamodule = CharacterDataModule(data, eval_batch_size=cfg.batch_size, labels=labels)
    datamodule.setup("test")
    trained_on = train_cfg.data
    with open_dict(trained_on):
        trained_on.cache_dir = data.cache_dir
    split, writers_note = writers_split(cfg.split, split, datamodule, trained_on, labels)
    if writers_note:
        log.warning("%s", writers_note)
    log.info("evaluating %s on %s, split %s", cfg.run_dir, data.name, split)
    weights = prior_weights(cfg.get("prior"))
    prior = log_prior(labels) if weights else None
    preds, targets, prior_top1 = predict_split(net, datamodule, split, prior, weights)
    # split indices are ascending and an unshuffled loader keeps that order
    rows = datamodule.splits[split]
    codepoints = np.asarray(datamodule.data.codepoints)[rows]
    names = np.array(datamodule.data.source_names)[np.asarray(datamodule.data.sources)[rows]]
    metrics = {
        "run_dir": str(cfg.run_dir),
        "data": data.name,
        "split": split,
        "writers_note": writers_note,
        **score(preds, targets, labels, codepoints, names.tolist(), cfg.confusions),
    }
    known = targets >= 0
    if weights and known.any():
        metrics["prior"] = [
            {"weight": w, "top1": float((top1 == targets)[known].mean())}
            for w, top1 in zip(weights, prior_top1, strict=True)
        ]
    if unseen:
        hits = (preds, targets)
        metrics["zero_shot"] = score_unseen(net, datamodule, split, hits, unseen, unknown)
    write_json(Path(cfg.paths.output_dir) / "metrics.json", metrics)
    _print(metrics, Path(cfg.paths.output_dir))
    return metrics


def _print(metrics: dict[str, Any], out: Path) -> None:
    def pct(v: float | None) -> str:
        return f"{100 * v:.2f}%" if v is not None else "n/a"

    oov = metrics["out_of_vocabulary"]
    print(
        f"\n{metrics['data']} ({metrics['split']}): {metrics['scored']} of {metrics['samples']} "
        f"samples scored, top-1 {pct(metrics['top1'])}, top-5 {pct(metrics['top5'])}\n"
        f"  not in the model's vocabulary: {oov['samples']} samples of "
        f"{len(oov['characters'])} characters\n"
        + "".join(
            f"  {name}: top-1 {pct(v['acc'])} of {v['n']}\n"
            for name, v in metrics["per_source"].items()
        )
        + "  by script: "
        + ", ".join(f"{k} {pct(v['acc'])} of {v['n']}" for k, v in metrics["per_script"].items())
        + "\n  most confused: "
        + ", ".join(
            f"{c['true']}->{c['predicted']} x{c['count']}" for c in metrics["confused_pairs"][:8]
        )
        + _look_alike_line(metrics.get("look_alikes") or {})
        + _zero_shot_line(metrics.get("zero_shot"), pct)
        + _prior_line(metrics.get("prior"), pct)
        + f"\n  written to {out / 'metrics.json'}",
        flush=True,
    )


def prior_weights(value: Any) -> list[float]:
    """``prior=`` as a list of weights: one number, or a list of them; 0 and null give none."""
    values = list(value) if isinstance(value, ListConfig | list | tuple) else [value]
    return [w for w in (checked_weight(v) for v in values) if w > 0]


def _prior_line(prior: list[dict[str, Any]] | None, pct) -> str:
    if not prior:
        return ""
    return "\n  with the character-frequency prior: " + ", ".join(
        f"weight {p['weight']} top-1 {pct(p['top1'])}" for p in prior
    )


def _look_alike_line(pairs: dict[str, dict[str, int]]) -> str:
    """``a->b x of n, b->a y of m`` for the look-alike pairs that were written."""
    cells = [
        f"{a}->{b} {v['a_as_b']} of {v['n_a']}, {b}->{a} {v['b_as_a']} of {v['n_b']}"
        for (a, _, b), v in pairs.items()
        if v["n_a"] or v["n_b"]
    ]
    return "\n  look-alikes read as their twin: " + "; ".join(cells) if cells else ""


def _zero_shot_line(zs: dict[str, Any] | None, pct) -> str:
    if not zs:
        return ""
    return (
        f"\n  zero-shot: {zs['samples']} samples of {zs['classes']} unseen classes: top-1 "
        f"{pct(zs['top1'])} among all classes (chance {pct(zs['chance_top1'])}), "
        f"{pct(zs['unseen_only_top1'])} among the unseen only "
        f"(chance {pct(zs['unseen_only_chance_top1'])})"
    )


@hydra.main(config_path=config_dir(), config_name="evaluate", version_base="1.3")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
