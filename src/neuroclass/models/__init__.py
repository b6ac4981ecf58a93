"""Model families (one per file, registered by name) and the factory that builds them."""
from __future__ import annotations

import torch

from neuroclass.config import ModelConfig
# importing a family's module registers it
from neuroclass.models import capsnet, cnn, inception, mlp, resnet, tv, vit  # noqa: F401
from neuroclass.models.layers import Classifier, init_weights
from neuroclass.models.registry import MODELS, family_options, register_model, resolve, resolved_options
from neuroclass.models.sizing import sized_options

__all__ = ["MODELS", "Classifier", "create", "family_options", "register_model", "resolved_options",
           "sized_options"]


def create(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int,
           mean: torch.Tensor, std: torch.Tensor) -> Classifier:
    """Build the registered family ``cfg.name`` (or ``tv:ARCH``), at size ``cfg.size``, behind an
    input standardization layer.

    >>> m = create(ModelConfig(name="mlp"), (1, 28, 28), 10, torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
    >>> m(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)).shape
    torch.Size([2, 10])
    """
    family, options = resolve(cfg.name, sized_options(cfg))
    net = family.build(options, tuple(input_shape), num_classes)
    init_weights(net, cfg.init)
    return Classifier(net, mean, std, family)
