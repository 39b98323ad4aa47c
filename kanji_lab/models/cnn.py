"""Depthwise-separable CNN with SENet-style channel attention."""

from __future__ import annotations

from torch import Tensor, nn

from kanji_lab.models.layers import SeparableBlock, conv_bn, feature_layer
from kanji_lab.models.registry import register


class ChannelAttentionCNN(nn.Module):
    """A 64x64 grey image -> class logits.

    A strided stem, then stages of separable blocks that halve the resolution and double the
    width (``width`` channels at 32x32 up to ``8 * width`` at 4x4), global pooling, a feature
    layer of ``features`` units and the class head.
    """

    def __init__(
        self,
        num_classes: int,
        width: int = 32,
        blocks: tuple[int, ...] = (1, 2, 2),
        features: int = 384,
        dropout: float = 0.2,
        se: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(1, width, 3, 2)]
        cin = width
        for stage, depth in enumerate(blocks):
            cout = width * 2 ** (stage + 1)
            layers.append(SeparableBlock(cin, cout, stride=2, se=se))
            layers += [SeparableBlock(cout, cout, se=se) for _ in range(depth - 1)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.embed = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            *feature_layer(cin, features, dropout),
        )
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.embed(self.features(x)))


@register("cnn")
def build_cnn(labels: list[str], **kwargs) -> ChannelAttentionCNN:
    """The default model: ``model=cnn``."""
    kwargs["blocks"] = tuple(kwargs.get("blocks", (1, 2, 2)))
    return ChannelAttentionCNN(len(labels), **kwargs)
