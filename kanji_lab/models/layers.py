"""Building blocks shared by the architectures."""

from __future__ import annotations

from torch import Tensor, nn


class SqueezeExcite(nn.Module):
    """SENet channel attention: global pool, bottleneck MLP, sigmoid gate per channel."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


def conv_bn(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """Convolution, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SeparableBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1 convolution with optional SE, residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int = 1, se: bool = True) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(cin, cin, 3, stride, groups=cin),
            conv_bn(cin, cout, 1),
            SqueezeExcite(cout) if se else nn.Identity(),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        return x + y if self.residual else y


def feature_layer(dim: int, features: int, dropout: float) -> nn.Module:
    """``features`` > 0: linear layer, batch norm, ReLU, dropout (the CNN's); 0: dropout only."""
    if not features:
        return nn.Dropout(dropout)
    return nn.Sequential(
        nn.Linear(dim, features, bias=False),
        nn.BatchNorm1d(features),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
    )


class PositionalPool(nn.Module):
    """``(B, N, C)`` tokens -> ``(B, N * reduce)``: each token narrowed to ``reduce`` channels by
    one linear layer, then all of them side by side, so the pooled vector keeps where each part
    of the character is (a global average forgets it)."""

    def __init__(self, channels: int, reduce: int) -> None:
        super().__init__()
        if reduce < 1:
            raise ValueError(
                f"pool must be 0 (average pooling) or a number of channels kept per position, "
                f"got {reduce}"
            )
        self.narrow = nn.Linear(channels, reduce)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.narrow(tokens).flatten(1)
