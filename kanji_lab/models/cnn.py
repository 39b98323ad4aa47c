"""Depthwise-separable CNN with SENet-style channel attention."""

from __future__ import annotations

from torch import Tensor, nn

from kanji_lab.models.layers import PositionalPool, SeparableBlock, conv_bn, feature_layer
from kanji_lab.models.registry import register


class ChannelAttentionCNN(nn.Module):
    """A 64x64 grey image -> class logits.

    A strided stem, then stages of separable blocks that halve the resolution and double the width
    (``width`` channels at 32x32 up to ``8 * width`` at 4x4), pooling, a feature layer of
    ``features`` units (0: none) and the class head. ``pool`` > 0 pools by position (each cell of
    the last map narrowed to ``pool`` channels, all cells side by side: the layout of the parts
    survives); 0 takes the global average.
    """

    def __init__(
        self,
        num_classes: int,
        width: int = 32,
        blocks: tuple[int, ...] = (1, 2, 2),
        features: int = 384,
        dropout: float = 0.2,
        se: bool = True,
        pool: int = 32,
    ) -> None:
        super().__init__()
        self.features = separable_stages(width, blocks, se)
        cin = width * 2 ** len(blocks)
        if pool:
            side = 64 // 2 ** (len(blocks) + 1)
            pooled, pooling = pool * side * side, [Tokens(), PositionalPool(cin, pool)]
        else:
            pooled, pooling = cin, [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        # the feature layer's modules sit in ``embed`` itself (the keys of trained models)
        self.embed = nn.Sequential(
            *pooling, *flat_modules(feature_layer(pooled, features, dropout))
        )
        self.head = nn.Linear(features or pooled, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.embed(self.features(x)))


def flat_modules(module: nn.Module) -> list[nn.Module]:
    """A Sequential's modules, or the module alone."""
    return list(module) if isinstance(module, nn.Sequential) else [module]


def separable_stages(width: int, blocks: tuple[int, ...], se: bool = True) -> nn.Sequential:
    """The strided stem and the separable stages: a 64x64 image -> a ``width * 2 ** len(blocks)``
    channel map of side ``64 / 2 ** (len(blocks) + 1)``."""
    layers: list[nn.Module] = [conv_bn(1, width, 3, 2)]
    cin = width
    for stage, depth in enumerate(blocks):
        cout = width * 2 ** (stage + 1)
        layers.append(SeparableBlock(cin, cout, stride=2, se=se))
        layers += [SeparableBlock(cout, cout, se=se) for _ in range(depth - 1)]
        cin = cout
    return nn.Sequential(*layers)


class Tokens(nn.Module):
    """``(B, C, H, W)`` map -> ``(B, H * W, C)`` tokens in raster order."""

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(2).transpose(1, 2)


@register("cnn")
def build_cnn(labels: list[str], **kwargs) -> ChannelAttentionCNN:
    """The default model: ``model=cnn``."""
    kwargs["blocks"] = tuple(kwargs.get("blocks", (1, 2, 2)))
    return ChannelAttentionCNN(len(labels), **kwargs)
