"""Convolutional encoder + bidirectional LSTM/GRU over the feature map, with an auxiliary head
trained on each character's components (from the KanjiVG radical data, see
:mod:`kanji_lab.models.radicals`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kanji_lab.models import radicals
from kanji_lab.models.cnn import separable_stages
from kanji_lab.models.layers import PositionalPool, feature_layer
from kanji_lab.models.registry import register


def component_index(labels: list[str]) -> tuple[list[str], Tensor]:
    """The component vocabulary of ``labels`` and, per class, the indices of its components
    ``(classes, max components)`` padded with -1."""
    vocab = radicals.vocabulary(labels)
    position = {c: i for i, c in enumerate(vocab)}
    rows = [[position[c] for c in radicals.components(char)] for char in labels]
    index = torch.full((len(labels), max(map(len, rows))), -1, dtype=torch.long)
    for i, row in enumerate(rows):
        index[i, : len(row)] = torch.tensor(row)
    return vocab, index


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
    map) produce the map; ``read=columns`` makes each column a step (left to right, the way
    left-right compounds are built), ``read=raster`` each position in raster order. A ``layers``
    deep bidirectional ``cell`` (lstm or gru) with ``hidden`` units per direction reads it;
    pooling gives one vector (``pool`` > 0: each step narrowed to ``pool`` channels, all side by
    side, so the order of the parts survives; 0: attention pooling), then a ``features`` feature
    layer (as in the CNN; 0: none) and a linear layer the class logits. With
    ``aux_weight > 0`` a second head predicts the character's components (multi-label, binary
    cross-entropy against the radical data), added to the loss with that weight.
    """

    def __init__(
        self,
        labels: list[str],
        width: int = 32,
        blocks: tuple[int, ...] = (1, 2),
        hidden: int = 128,
        layers: int = 1,
        cell: str = "lstm",
        read: str = "columns",
        dropout: float = 0.2,
        se: bool = True,
        aux_weight: float = 0.5,
        features: int = 384,
        pool: int = 32,
    ) -> None:
        super().__init__()
        if read not in ("columns", "raster"):
            raise ValueError(f"read must be columns or raster, not {read!r}")
        self.read = read
        self.encoder = separable_stages(width, tuple(blocks), se)
        channels = width * 2 ** len(blocks)
        side = 64 // 2 ** (len(blocks) + 1)
        step = channels * side if read == "columns" else channels
        self.project = nn.Sequential(
            nn.Linear(step, 2 * hidden), nn.LayerNorm(2 * hidden), nn.GELU()
        )
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(2 * hidden, hidden, layers, batch_first=True, bidirectional=True)
        steps = side if read == "columns" else side * side
        self.pool = PositionalPool(2 * hidden, pool) if pool else AttentionPool(2 * hidden)
        self.embed = feature_layer(pool * steps if pool else 2 * hidden, features, dropout)
        out = features or (pool * steps if pool else 2 * hidden)
        self.head = nn.Linear(out, len(labels))
        self.aux_weight = aux_weight
        if aux_weight > 0:
            vocab, index = component_index(labels)
            self.aux_head = nn.Linear(out, len(vocab))
            nn.init.constant_(self.aux_head.bias, -4.0)  # components are rare: start near 2%
            # derived from the labels at construction: not stored in weight files
            self.register_buffer("component_index", index, persistent=False)

    def sequence(self, x: Tensor) -> Tensor:
        """The feature map as a ``(B, steps, 2 * hidden)`` sequence."""
        fmap = self.encoder(x)  # (B, C, H, W)
        if self.read == "columns":
            seq = fmap.permute(0, 3, 1, 2).flatten(2)  # (B, W, C*H)
        else:
            seq = fmap.flatten(2).transpose(1, 2)  # (B, H*W, C)
        return self.project(seq)

    def pooled(self, x: Tensor) -> Tensor:
        seq = self.sequence(x)
        out, _ = self.rnn(seq)
        return self.embed(self.pool(seq + out))  # residual: the recurrence adds context

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pooled(x))

    def aux_targets(self, y: Tensor) -> Tensor:
        """Multi-hot component targets of classes ``y``: ``(B, components)``."""
        return multi_hot(self.component_index[y], self.aux_head.out_features)

    def loss_terms(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        feats = self.pooled(x)
        logits = self.head(feats)
        if self.aux_weight <= 0:
            return logits, {}
        targets = self.aux_targets(y)
        bce = F.binary_cross_entropy_with_logits(self.aux_head(feats), targets, reduction="sum")
        aux = bce / targets.sum().clamp(min=1)  # per component present, not per vocabulary entry
        return logits, {"aux_components": self.aux_weight * aux}


@register("rnn")
def build_rnn(labels: list[str], **kwargs) -> RecurrentClassifier:
    """``model=rnn``."""
    return RecurrentClassifier(labels, **kwargs)
