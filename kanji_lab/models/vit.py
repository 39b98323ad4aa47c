"""A small vision transformer for 64x64 character images."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kanji_lab.models.cnn import separable_stages
from kanji_lab.models.layers import PositionalPool, feature_layer
from kanji_lab.models.registry import register


class Attention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention`` (exports to ONNX)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: attention and MLP, each residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """Patches of ``patch`` x ``patch`` pixels embedded to ``width``, learned positions, ``depth``
    blocks of ``heads`` heads, pooling (``pool`` > 0: each token narrowed to ``pool`` channels, all
    side by side; 0: their mean), a ``features`` feature layer (as in the CNN; 0: none) and the
    class head. The defaults (8x8 patches = 64 tokens, width 128, depth 2) train on
    a CPU."""

    def __init__(
        self,
        num_classes: int,
        patch: int = 8,
        width: int = 128,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        image_size: int = 64,
        features: int = 384,
        pool: int = 16,
    ) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"patch {patch} does not divide the image size {image_size}")
        tokens = (image_size // patch) ** 2
        self.patches = patch_embedding(width, patch)
        self.position = nn.Parameter(torch.randn(1, tokens, width) * 0.02)
        blocks = [Block(width, heads, mlp_ratio, dropout) for _ in range(depth)]
        self.blocks = nn.Sequential(*blocks)
        self.norm = nn.LayerNorm(width)
        self.pool = PositionalPool(width, pool) if pool else None
        pooled = pool * tokens if pool else width
        self.embed = feature_layer(pooled, features, dropout)
        self.head = nn.Linear(features or pooled, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patches(x).flatten(2).transpose(1, 2) + self.position
        tokens = self.norm(self.blocks(tokens))
        pooled = tokens.mean(dim=1) if self.pool is None else self.pool(tokens)
        return self.head(self.embed(pooled))


def patch_embedding(width: int, patch: int) -> nn.Module:
    """Image -> one ``width``-vector per ``patch`` x ``patch`` cell: the separable,
    channel-attention stages of ``model=cnn`` down to the token grid (the hybrid ViT of Dosovitskiy
    et al. 2021), which lets a small transformer learn from a few epochs of data as fast as the CNN.
    """
    steps = patch.bit_length() - 1
    if patch != 2**steps or steps < 2:
        raise ValueError(f"the ViT needs a power-of-two patch of at least 4, got {patch}")
    cnn_width = max(8, width // 4)
    blocks = tuple([1] + [2] * (steps - 2))
    stages = separable_stages(cnn_width, blocks)
    return nn.Sequential(stages, nn.Conv2d(cnn_width * 2 ** (steps - 1), width, 1))


@register("vit")
def build_vit(labels: list[str], **kwargs) -> VisionTransformer:
    """``model=vit``."""
    return VisionTransformer(len(labels), **kwargs)
