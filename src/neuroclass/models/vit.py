"""vit: a small Vision Transformer (Dosovitskiy et al. 2021).

The image is cut into patch x patch squares (28x28 with patch 4: a 7x7 grid of 49 tokens), each
projected to ``dim`` features by one strided convolution; a learned class token and learned position
embeddings are added, then ``depth`` pre-norm Transformer blocks (LayerNorm -> multi-head
self-attention -> residual; LayerNorm -> MLP with GELU -> residual) mix the tokens. The classifier
reads the class token after a final LayerNorm. Attention is torch's ``nn.MultiheadAttention``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from neuroclass.config import rule
from neuroclass.errors import NeuroclassError
from neuroclass.models.layers import cross_entropy
from neuroclass.models.registry import register_model


@dataclass(frozen=True)
class ViTConfig:
    patch_size: int = field(default=4, metadata=rule(gt=0))  # side in pixels; inputs padded to a multiple
    dim: int = field(default=64, metadata=rule(gt=0))  # token width; a multiple of heads
    depth: int = field(default=4, metadata=rule(gt=0))  # Transformer blocks
    heads: int = field(default=4, metadata=rule(gt=0))  # attention heads per block
    mlp_ratio: float = field(default=2.0, metadata=rule(gt=0))  # MLP hidden units per token feature
    dropout: float = field(default=0.1, metadata=rule(ge=0, lt=1))  # on attention weights, MLP and embeddings

    def validate(self) -> None:
        """Each attention head takes dim / heads features of a token."""
        if self.dim % self.heads:
            raise NeuroclassError(f"model vit: model.options.dim ({self.dim}) must be a multiple of heads "
                                  f"(model.options.heads={self.heads})")


class Block(nn.Module):
    """Pre-norm Transformer block: x + attention(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = max(1, round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)  # (B, T, D)
        x = x + self.attn(h, h, h, need_weights=False)[0]  # (B, T, D): every token attends to all
        return x + self.mlp(self.norm2(x))  # (B, T, D)


class ViT(nn.Module):
    def __init__(self, cfg: ViTConfig, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise NeuroclassError(f"model vit needs images (C, H, W); got input shape {input_shape}: "
                                  "for a table's feature rows use --model mlp")
        if cfg.dim % cfg.heads:
            raise NeuroclassError(f"model vit: dim ({cfg.dim}) must be a multiple of heads ({cfg.heads})")
        c, h, w = input_shape
        p = cfg.patch_size
        self.patch_size = p
        self.grid = (math.ceil(h / p), math.ceil(w / p))  # patches per column and row, after padding
        self.patch_embed = nn.Conv2d(c, cfg.dim, p, stride=p)  # one linear map per patch
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], cfg.dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)  # std 0.02 as in the reference implementations
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.Sequential(*[Block(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.dropout)
                                      for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        pad_h, pad_w = -x.shape[2] % p, -x.shape[3] % p
        if pad_h or pad_w:  # zero = the training mean after standardization
            x = F.pad(x, (0, pad_w, 0, pad_h))  # (B, C, gh * p, gw * p)
        x = self.patch_embed(x)  # (B, D, gh, gw)
        x = x.flatten(2).transpose(1, 2)  # (B, N, D) with N = gh * gw tokens
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        x = self.drop(torch.cat([cls, x], dim=1) + self.pos_embed)  # (B, 1 + N, D)
        x = self.blocks(x)  # (B, 1 + N, D)
        return self.head(self.norm(x[:, 0]))  # class token -> (B, num_classes)


# sizes, cheapest first: attention's cost grows with the square of the token count, so the small
# sizes use 7x7 patches (16 tokens at 28x28) and the larger ones 4x4 (49); transformers learn
# slowly from little data, so a time budget (model.size=auto) wants 10 epochs of a size
SIZES = (("xs", {"patch_size": 7, "dim": 48, "depth": 3, "heads": 3}),
         ("s", {"patch_size": 7, "dim": 64, "depth": 4}),
         ("m", {"patch_size": 4, "dim": 64, "depth": 4}),
         ("l", {"patch_size": 4, "dim": 96, "depth": 6, "heads": 6}))


@register_model("vit", ViTConfig,
                "Vision Transformer: patch embedding, class token, pre-norm self-attention blocks",
                # features: the normalised class token, (B, dim)
                head="head", features="head", feature_side="input", output="logits",
                loss=cross_entropy, sizes=SIZES, min_epochs=10)
def build_vit(cfg: ViTConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return ViT(cfg, input_shape, num_classes)
