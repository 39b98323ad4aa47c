"""Convolutional encoder + bidirectional LSTM/GRU over the feature map, with an auxiliary head
trained on each character's components (from the KanjiVG radical data, see
:mod:`kanji_lab.data.radicals`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kanji_lab.data import radicals
from kanji_lab.models.cnn import separable_stages
from kanji_lab.models.layers import PositionalPool, feature_layer
from kanji_lab.models.registry import register


def component_index(labels: list[str], vocab: list[str]) -> Tensor:
    """Per class, the indices in ``vocab`` of its components ``(classes, max components)``, padded
    with -1 (components outside ``vocab`` are left out)."""
    position = {c: i for i, c in enumerate(vocab)}
    rows = [[position[c] for c in radicals.components(char) if c in position] for char in labels]
    index = torch.full((len(labels), max(1, *map(len, rows))), -1, dtype=torch.long)
    for i, row in enumerate(rows):
        index[i, : len(row)] = torch.tensor(row)
    return index


def multi_hot(index: Tensor, size: int) -> Tensor:
    """Rows of ``-1``-padded indices -> ``(rows, size)`` float multi-hot targets."""
    out = torch.zeros(index.shape[0], size + 1, device=index.device)
    out.scatter_(1, index.masked_fill(index < 0, size), 1.0)
    return out[:, :size]


class AttentionPool(nn.Module):
    """Weighted mean over the steps of a sequence, weights from a learned scoring layer."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, seq: Tensor) -> Tensor:
        weights = torch.softmax(self.score(seq), dim=1)  # (B, T, 1)
        return (weights * seq).sum(dim=1)


class RecurrentClassifier(nn.Module):
    """A 64x64 image -> class logits through a CNN feature map read as a sequence.

    The separable-conv stages of :class:`ChannelAttentionCNN` (``blocks`` stages; two give an 8x8
    map) produce the map; each column is a step (left to right, the way left-right compounds are
    built). A ``layers`` deep bidirectional ``cell`` (lstm or gru) with ``hidden`` units per
    direction reads it; pooling gives one vector (``pool`` > 0: each step narrowed to ``pool``
    channels, all side by side, so the order of the parts survives; 0: attention pooling), then a
    ``features`` feature layer (as in the CNN; 0: none) and a linear layer the class logits. With
    ``aux_weight > 0`` a second head predicts the character's components (multi-label, binary
    cross-entropy against the radical data), added to the loss with that weight.

    ``components`` is the auxiliary head's vocabulary: taken from the installed KanjiVG when None
    (a new model), and stored in model files (:meth:`stored`), so that a file loads with the
    vocabulary it was trained with whatever KanjiVG the loading machine has.
    """

    def __init__(
        self,
        labels: list[str],
        width: int = 32,
        blocks: tuple[int, ...] = (1, 2),
        hidden: int = 128,
        layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.2,
        se: bool = True,
        aux_weight: float = 0.5,
        features: int = 384,
        pool: int = 32,
        components: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = separable_stages(width, tuple(blocks), se)
        channels = width * 2 ** len(blocks)
        side = 64 // 2 ** (len(blocks) + 1)
        self.project = nn.Sequential(
            nn.Linear(channels * side, 2 * hidden), nn.LayerNorm(2 * hidden), nn.GELU()
        )
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(2 * hidden, hidden, layers, batch_first=True, bidirectional=True)
        self.pool = PositionalPool(2 * hidden, pool) if pool else AttentionPool(2 * hidden)
        self.embed = feature_layer(pool * side if pool else 2 * hidden, features, dropout)
        out = features or (pool * side if pool else 2 * hidden)
        self.head = nn.Linear(out, len(labels))
        self.aux_weight = aux_weight
        self.components: list[str] = []
        self.labels = list(labels)
        self._component_index: Tensor | None = None  # training targets, built on first use
        if aux_weight > 0:
            self.components = list(
                radicals.vocabulary(labels) if components is None else components
            )
            self.aux_head = nn.Linear(out, len(self.components))
            nn.init.constant_(self.aux_head.bias, -4.0)  # components are rare: start near 2%

    def stored(self) -> dict[str, list[str]]:
        """What a model file keeps besides the weights and the config: the component vocabulary."""
        return {"components": self.components} if self.aux_weight > 0 else {}

    def sequence(self, x: Tensor) -> Tensor:
        """The feature map's columns as a ``(B, steps, 2 * hidden)`` sequence."""
        fmap = self.encoder(x)  # (B, C, H, W)
        return self.project(fmap.permute(0, 3, 1, 2).flatten(2))  # (B, W, C*H)

    def pooled(self, x: Tensor) -> Tensor:
        seq = self.sequence(x)
        out, _ = self.rnn(seq)
        return self.embed(self.pool(seq + out))  # residual: the recurrence adds context

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pooled(x))

    def aux_targets(self, y: Tensor) -> Tensor:
        """Multi-hot component targets of classes ``y``: ``(B, components)``."""
        if self._component_index is None or self._component_index.device != y.device:
            index = component_index(self.labels, self.components)
            self._component_index = index.to(y.device)
        return multi_hot(self._component_index[y], self.aux_head.out_features)

    def train_outputs(self, x: Tensor) -> tuple[Tensor, ...]:
        """Training's forward: the class logits, then the component logits (with the auxiliary
        head). Compilation and quantization-aware training wrap this as they wrap ``forward``."""
        feats = self.pooled(x)
        if self.aux_weight <= 0:
            return (self.head(feats),)
        return self.head(feats), self.aux_head(feats)

    def extra_losses(self, outputs: tuple[Tensor, ...], y: Tensor) -> dict[str, Tensor]:
        """The weighted component loss of :meth:`train_outputs`' outputs (none without the head)."""
        if self.aux_weight <= 0:
            return {}
        targets = self.aux_targets(y)
        bce = F.binary_cross_entropy_with_logits(outputs[1], targets, reduction="sum")
        aux = bce / targets.sum().clamp(min=1)  # per component present, not per vocabulary entry
        return {"aux_components": self.aux_weight * aux}


@register("rnn")
def build_rnn(labels: list[str], **kwargs) -> RecurrentClassifier:
    """``model=rnn``."""
    return RecurrentClassifier(labels, **kwargs)
