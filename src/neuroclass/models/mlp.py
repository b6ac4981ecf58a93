"""mlp: a multilayer perceptron. Images are flattened (28x28 -> 784 inputs).

On a table with data.encoding=embedding, the last ``len(categories)`` inputs are category codes
(0..n-1; -1 for a category the training file did not hold): each column gets a learned vector per
category (entity embeddings, Guo & Berkhahn 2016), concatenated with the numeric inputs before the
first Linear. An unseen category's vector is a fixed zero row (``padding_idx``), as one-hot's all-zero
block. Embedding widths follow fastai's ``emb_sz_rule``: min(600, round(1.6 * n ** 0.56)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from neuroclass.config import rule
from neuroclass.errors import NeuroclassError
from neuroclass.models.layers import activation, cross_entropy
from neuroclass.models.registry import register_model


@dataclass(frozen=True)
class MLPConfig:
    # units per hidden layer; [] is a linear model
    hidden: list[int] = field(default_factory=lambda: [512, 256], metadata=rule(gt=0))
    activation: str = field(default="relu",
                            metadata=rule(choices=("relu", "sigmoid", "tanh", "gelu", "leaky_relu", "silu")))
    dropout: float = field(default=0.2, metadata=rule(ge=0, lt=1))
    batch_norm: bool = True
    # categories per code column at the end of a table's inputs (set by the pipeline from the
    # table when data.encoding=embedding; [] otherwise) and the width of each embedding (None: fastai's rule)
    categories: list[int] = field(default_factory=list, metadata=rule(gt=0))
    embedding_dim: Optional[int] = field(default=None, metadata=rule(gt=0))


def embedding_width(categories: int, dim: Optional[int] = None) -> int:
    """An embedding's width for a column of ``categories`` categories: ``dim`` when given, else
    fastai's ``emb_sz_rule``, min(600, round(1.6 * n ** 0.56)).

    >>> embedding_width(3), embedding_width(1000), embedding_width(7, dim=4)
    (3, 77, 4)
    """
    return int(dim) if dim is not None else min(600, round(1.6 * categories ** 0.56))


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        self.categories = [int(n) for n in cfg.categories]
        if len(self.categories) > width:
            raise NeuroclassError(f"model.options.categories: {len(self.categories)} code columns but the "
                                  f"input has {width} features")
        # row n of a column's table: a category the training file did not hold (code -1), fixed at zero
        self.embeddings = nn.ModuleList(nn.Embedding(n + 1, embedding_width(n, cfg.embedding_dim), padding_idx=n)
                                        for n in self.categories)
        width += sum(e.embedding_dim for e in self.embeddings) - len(self.categories)
        for units in cfg.hidden:
            layers.append(nn.Linear(width, int(units)))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm1d(int(units)))
            layers.append(activation(cfg.activation))
            if cfg.dropout:
                layers.append(nn.Dropout(cfg.dropout))
            width = int(units)
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.categories:  # (B, D_num + C) -> (B, D_num + sum of embedding widths)
            codes = x[:, x.shape[1] - len(self.categories):].round().long()  # (B, C)
            vectors = [emb(torch.where((c >= 0) & (c < n), c, n))
                       for emb, c, n in zip(self.embeddings, codes.unbind(1), self.categories)]
            x = torch.cat([x[:, :x.shape[1] - len(self.categories)], *vectors], dim=1)
        return self.layers(x)  # (B, ...) -> (B, D) -> (B, num_classes)


# hidden units by model.size, cheapest first; a fully connected net needs many passes over the data,
# so a time budget (model.size=auto) takes the largest size that still gets 15 epochs
SIZES = (("s", {"hidden": [256, 128]}),
         ("m", {"hidden": [512, 256]}),
         ("l", {"hidden": [1024, 512]}),
         ("xl", {"hidden": [2048, 1024]}))


def mlp_head(net: MLP) -> str:
    """The final Linear, the last of ``layers`` (how many come before it depends on the options)."""
    return f"layers.{len(net.layers) - 1}"


# features: the last hidden layer's activations (after dropout), (B, hidden[-1]); the flattened
# input when there is no hidden layer
@register_model("mlp", MLPConfig, "fully connected layers: Linear -> [BatchNorm] -> activation -> Dropout",
                head=mlp_head, features=mlp_head, feature_side="input", output="logits",
                loss=cross_entropy, sizes=SIZES, min_epochs=15)
def build_mlp(cfg: MLPConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return MLP(cfg, input_shape, num_classes)
