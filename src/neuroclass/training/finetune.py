"""Fine-tuning a transferred model: head-only epochs on a frozen backbone, then discriminative rates.

The schedule of the best peers (fastai's ``fine_tune``, Keras' transfer-learning guide): a new head
on a pretrained backbone first trains alone for ``train.head_epochs`` epochs, so that its random
start sends no large gradients into the backbone; then everything trains, earlier layers with
smaller rates (``optim.layer_decay`` per block group, ULMFiT's discriminative fine-tuning), since
early layers hold generic features (edges, textures) that the new task should change least.
``train.freeze`` keeps the backbone frozen throughout (feature-extractor mode).

A frozen backbone keeps its weights exactly (no gradients, so no update and no weight decay) and its
BatchNorm running statistics (its BatchNorm layers run in eval mode).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from torch import nn

from neuroclass.config import Config, ModelConfig
from neuroclass.errors import NeuroclassError
from neuroclass.models.layers import Classifier
from neuroclass.models.registry import resolved_options, split_name
from neuroclass.models.transfer import (canonical, find_head, load_matching, load_pretrained, load_weights_file,
                                        split_backbone_head)
from neuroclass.runs import RunFolder
from neuroclass.models.tv import TorchvisionConfig
from neuroclass.training.callbacks import Callback
from neuroclass.training.state import TrainState

BLOCK_GROUPS = 4  # the backbone is cut into at most this many groups of consecutive blocks
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def transfer_source(cfg: Config) -> str:
    """Which starting point the config names ("" for none); refuses more than one, and transfer
    options without a starting point.

    Example::

        transfer_source(load_config(overrides=["model.weights=w.safetensors"]))
        # -> 'weights'
    """
    given = [name for name, value in (("pretrained", cfg.model.pretrained), ("weights", cfg.model.weights),
                                      ("from_run", cfg.model.from_run)) if value]
    if len(given) > 1:
        raise NeuroclassError(f"model.{' and model.'.join(given)} are both set; start from one of "
                              "--pretrained, --weights PATH or --from RUN")
    if not given and (cfg.train.freeze or cfg.train.head_epochs):
        what = "train.freeze (--freeze)" if cfg.train.freeze else "train.head_epochs"
        raise NeuroclassError(f"{what} needs a trained backbone to start from; add --pretrained "
                              "(tv models), --weights PATH or --from RUN")
    if cfg.model.pretrained and split_name(cfg.model.name, cfg.model.options)[0] != "tv":
        raise NeuroclassError(f"--pretrained needs a torchvision model (--model tv:resnet18, ...); "
                              f"for {cfg.model.name} use --weights PATH or --from RUN")
    return given[0] if given else ""


def resolve_transfer(cfg: Config) -> Config:
    """The config a run builds from: with ``--from RUN``, the run's model family and options.
    Conflicting starting points fail here, before any data loads.

    Example::

        cfg = resolve_transfer(load_config(overrides=["model.from_run=runs/fmnist-cnn-x"]))
    """
    transfer_source(cfg)
    return model_from_run(cfg) if cfg.model.from_run else cfg


def block_name(param_name: str) -> str:
    """The block a parameter belongs to: its path up to the first part that ends in a number
    (``stages.2``, ``layer3``, ``encoder_layer_5``), else its module.

    >>> block_name("net.stages.2.conv1.weight"), block_name("net.model.layer3.0.bn1.bias")
    ('stages.2', 'layer3')
    """
    parts = canonical(param_name).split(".")
    for i, part in enumerate(parts[:-1]):
        if re.search(r"\d$", part):
            return ".".join(parts[:i + 1])
    return ".".join(parts[:-1]) or parts[0]


def layer_lr_scales(model: Classifier, decay: float, groups: int = BLOCK_GROUPS) -> dict[str, float]:
    """Learning-rate multipliers by parameter name: 1 for the head; the backbone's blocks, in
    definition order, cut into ``groups`` consecutive groups, the last getting ``decay``, the one
    before ``decay**2``, and so on down to the stem.

    Example::

        scales = layer_lr_scales(resnet_classifier, 0.5)
        scales["net.stem.0.weight"], scales["net.head.2.weight"]
        # -> (0.0625, 1.0)
    """
    backbone, head = split_backbone_head(model)
    blocks = list(dict.fromkeys(block_name(n) for n in backbone))  # unique, in order
    n_groups = max(1, min(groups, len(blocks)))
    group_of = {b: i * n_groups // max(1, len(blocks)) for i, b in enumerate(blocks)}
    scales = {n: decay ** (n_groups - group_of[block_name(n)]) for n in backbone}
    return {**scales, **{n: 1.0 for n in head}}


def set_backbone_frozen(model: Classifier, backbone: list[str], frozen: bool) -> None:
    """Freeze or unfreeze the named parameters. While frozen, every BatchNorm layer runs in eval
    mode, so its running statistics stay those of the source (a head is never a BatchNorm)."""
    names = set(backbone)
    for name, param in model.named_parameters():
        if name in names:
            param.requires_grad_(not frozen)
    if frozen:
        for module in model.modules():
            if isinstance(module, BATCH_NORMS):
                module.eval()


class FineTune(Callback):
    """Backbone frozen for the first ``head_epochs`` epochs, or for all of them with ``freeze``.

    Runs at every epoch start, after the Trainer has put the model in training mode, because
    ``model.train()`` would put the frozen BatchNorm layers back into training mode.

    Example::

        trainer = Trainer(..., callbacks=[FineTune(backbone, head_epochs=1, freeze=False)])
    """

    def __init__(self, backbone: list[str], head_epochs: int, freeze: bool) -> None:
        self.backbone, self.head_epochs, self.freeze = backbone, head_epochs, freeze

    def on_epoch_start(self, state: TrainState, model: nn.Module) -> None:
        set_backbone_frozen(model, self.backbone, self.freeze or state.epoch < self.head_epochs)

    def on_fit_end(self, state: TrainState, model: nn.Module) -> None:
        set_backbone_frozen(model, self.backbone, False)  # the finished model is an ordinary one


@dataclass
class FineTuning:
    """What the Trainer needs for a transferred model: callbacks, and per-parameter rate scales."""

    callbacks: list[Callback] = field(default_factory=list)
    lr_scales: dict[str, float] | None = None
    source: str = ""  # "pretrained" | "weights" | "from_run" | ""
    new_head: bool = False


def prepare_fine_tuning(model: Classifier, cfg: Config, input_shape: tuple[int, ...],
                        classes: list[str]) -> FineTuning:
    """Load the configured starting weights into ``model`` and plan the fine-tuning schedule.

    Example::

        plan = prepare_fine_tuning(model, cfg, dataset.input_shape, dataset.classes)
        Trainer(..., callbacks=plan.callbacks, lr_scales=plan.lr_scales)
    """
    source = transfer_source(cfg)
    if not source:
        return FineTuning()
    if source == "pretrained":
        arch = split_name(cfg.model.name, cfg.model.options)[1].get("arch", TorchvisionConfig.arch)
        load_pretrained(model, arch)
        new_head = True
    elif source == "weights":
        new_head = load_weights_file(model, cfg.model.weights)
    else:
        new_head = load_from_run(model, cfg.model.from_run, input_shape, classes)
    head_epochs = cfg.train.head_epochs if cfg.train.head_epochs is not None else int(new_head)
    backbone, _ = split_backbone_head(model)
    frozen_epochs = head_epochs or cfg.train.freeze
    callbacks = [FineTune(backbone, head_epochs, cfg.train.freeze)] if frozen_epochs else []
    decay = cfg.optim.layer_decay
    scales = layer_lr_scales(model, decay) if decay < 1 and not cfg.train.freeze else None
    return FineTuning(callbacks, scales, source, new_head)


# ----------------------------------------------------------------------------- an earlier run

def model_from_run(cfg: Config) -> Config:
    """``--from RUN``: the config with the run's model family and options, so the same network is
    built. An explicitly different model (not the default ``cnn``) is an error."""
    run = Path(cfg.model.from_run).expanduser()
    meta = RunFolder.open(run).meta()
    options = dict(meta["options"])
    name = f"{meta['family']}:{options['arch']}" if "arch" in options else meta["family"]
    default = ModelConfig()
    if (cfg.model.name, cfg.model.options) != (default.name, default.options):
        family, _ = split_name(cfg.model.name, cfg.model.options)
        if family != meta["family"] or resolved_options(cfg.model.name, cfg.model.options) != options:
            raise NeuroclassError(
                f"--from {run}: the run's model is {name} {options}, but this config asks for "
                f"{cfg.model.name} {cfg.model.options}; drop --model / model.options to reuse the run's")
    return replace(cfg, model=replace(cfg.model, name=name, options=options, init=meta["init"],
                                      size="default"))


def load_from_run(model: Classifier, run: str | Path, input_shape: tuple[int, ...],
                  classes: list[str]) -> bool:
    """``--from RUN``: the run's weights into ``model``; the head too when the classes are the same.
    Returns True when the head was replaced (other classes)."""
    run = Path(run).expanduser()
    meta = RunFolder.open(run).meta()
    if tuple(meta["input_shape"]) != tuple(input_shape):
        raise NeuroclassError(f"--from {run}: the run's model takes inputs of shape "
                              f"{tuple(meta['input_shape'])}, the data has {tuple(input_shape)}; "
                              "resize the data (data.image_size, data.channels) to match")
    new_head = list(meta["classes"]) != list(classes)
    head = set(find_head(model).params) if new_head else set()
    state = RunFolder.open(run).weights()
    report = load_matching(model, state, skip=head)
    if report.missing or report.mismatched:
        raise NeuroclassError(f"--from {run}: " + report.summary("weights").split("; ", 1)[-1])
    return new_head
