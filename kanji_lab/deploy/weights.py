"""Model files that stand alone: safetensors weights with the architecture and labels inside.

A file also keeps what its network derived from KanjiVG when it was built (HierCode's slot codes,
the RNN's component vocabulary: the network's ``stored()``) and the KanjiVG version, and is rebuilt
from those, so it loads and predicts the same on a machine with another KanjiVG or none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from kanji_lab.atomic import atomic_file
from kanji_lab.data.normalize import SETTINGS as NORMALIZE_SETTINGS
from kanji_lab.data.radicals import kanjivg_version
from kanji_lab.models.registry import build_network, stored_tables

FORMAT = "kanji_lab/1"
WEIGHTS_FILE = "model.safetensors"  # a run's model file
# what a model expects, saved with it: the shared image normalisation and the input encoding
PREPROCESSING = {
    "size": 64,
    "channels": 1,
    "ink": "bright",
    "range": [-1.0, 1.0],
    "normalize": NORMALIZE_SETTINGS,
}


def save_weights(
    path: Path,
    net: nn.Module,
    arch: str,
    net_cfg: dict,
    labels: list[str],
    extra_metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``net``'s weights plus what is needed to rebuild it (no training code needed).

    ``extra_metadata``: more string entries, e.g. ``quantization`` and ``quantized_layers`` for
    bitsandbytes files (see :mod:`kanji_lab.deploy.bnb`).
    """
    metadata = {
        "format": FORMAT,
        "arch": arch,
        "net": json.dumps(net_cfg),
        "labels": json.dumps(labels, ensure_ascii=False),
        "preprocessing": json.dumps(PREPROCESSING),
        "stored": json.dumps(stored_tables(net), ensure_ascii=False),
        "kanjivg": kanjivg_version(),
        **(extra_metadata or {}),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def read_metadata(path: Path) -> dict[str, Any]:
    """Architecture, net config, labels and preprocessing stored in a weights file."""
    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    if raw.get("format") != FORMAT:
        raise ValueError(f"{path} is not a kanji_lab weights file (format {raw.get('format')!r})")
    meta = {
        "arch": raw["arch"],
        "net": json.loads(raw["net"]),
        "labels": json.loads(raw["labels"]),
        "preprocessing": json.loads(raw["preprocessing"]),
        "quantization": raw.get("quantization"),
        "stored": json.loads(raw.get("stored", "{}")),
        "kanjivg": raw.get("kanjivg"),
    }
    if "quantized_layers" in raw:
        meta["quantized_layers"] = json.loads(raw["quantized_layers"])
    return meta


def load_weights(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network stored in ``path`` in eval mode; returns it and its metadata."""
    meta = read_metadata(path)
    if meta["quantization"]:
        raise ValueError(
            f"{path} holds {meta['quantization']} weights: load it with "
            "kanji_lab.deploy.bnb.load_quantized"
        )
    net = rebuild(meta)
    net.load_state_dict(load_file(str(path)))
    return net.eval(), meta


def rebuild(meta: dict[str, Any]) -> nn.Module:
    """The network a file's metadata describes, with its stored tables (untrained weights)."""
    return build_network(meta["arch"], meta["labels"], **meta["net"], **meta.get("stored", {}))
