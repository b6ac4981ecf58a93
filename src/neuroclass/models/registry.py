"""The model registry: a family name -> its config dataclass, builder, and what other code needs to
know about its network.

A model name is a family (``resnet``) or, for families with an ``arch`` option, ``FAMILY:ARCH``
(``tv:resnet18`` is family ``tv`` with ``arch=resnet18``).

Each family declares, next to its builder, what transfer learning, ``embed``, training and inference
would otherwise have to guess (timm's ``pretrained_cfg`` with ``classifier`` and ``first_conv`` is
the same idea): the head (its final classifier layer), the feature layer ``embed`` reads, the kind of
output the network returns, and the loss it trains with.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Optional

import torch
from torch import nn

from neuroclass.config import ModelConfig
from neuroclass.errors import NeuroclassError
from neuroclass.registry import Registry
from neuroclass.rules import build_dataclass, check_rule, rule

# a module (or parameter) path inside a family's network, as ``nn.Module.get_submodule`` takes it
# ("head.2", "model.fc"), or a function of the built network that returns one (when the path
# depends on the options: the last of a variable number of layers, a torchvision architecture)
PathSpec = str | Callable[[nn.Module], str]
# loss(output, target, label_smoothing, weight) -> scalar; target is class indices (B,) or soft
# targets (B, K); weight: None, or (K,) per-class weights (train.class_weight)
LossFn = Callable[[torch.Tensor, torch.Tensor, float, Optional[torch.Tensor]], torch.Tensor]


class OutputKind(str, Enum):
    """What a network's (B, K) output holds: ``logits`` (any real numbers, softmax gives
    probabilities) or ``lengths`` (capsnet's class-capsule lengths in [0, 1))."""

    LOGITS = "logits"
    LENGTHS = "lengths"


class Side(str, Enum):
    """Which tensor of a module is the feature vector: what goes into it, or what comes out."""

    INPUT = "input"
    OUTPUT = "output"


@dataclass(frozen=True)
class ModelFamily:
    """A registered family: options, builder, and the declarations about its network.

    ``head``: the parameters of the final classifier layer, replaced when the classes change
    (a module path, whose parameters all belong to the head, or a parameter path).
    ``features`` and ``feature_side``: the tensor ``embed`` returns, flattened to (B, D): the input
    (or output) of that module. ``output``: what ``forward`` returns. ``loss``: what the Trainer
    minimises on that output.
    """

    name: str
    config: type  # a frozen dataclass of the family's options
    build: Callable[..., nn.Module]  # build(cfg, input_shape, num_classes) -> nn.Module
    summary: str
    head: PathSpec
    features: PathSpec
    feature_side: Side
    output: OutputKind
    loss: LossFn
    # named option presets, cheapest first (models/sizing.py picks one to fit a time budget), and
    # the fewest epochs a size should get within the budget to be worth its cost
    sizes: tuple = ()  # ((name, {option: value}), ...)
    min_epochs: float = 5.0

    def head_path(self, net: nn.Module) -> str:
        """The head's path inside ``net`` (a network this family built), e.g. ``"head.2"``."""
        return self.head if isinstance(self.head, str) else self.head(net)

    def feature_path(self, net: nn.Module) -> str:
        """The path of the module whose input (or output, ``feature_side``) ``embed`` reads."""
        return self.features if isinstance(self.features, str) else self.features(net)


MODELS: Registry[ModelFamily] = Registry("model")
log = logging.getLogger(__name__)  # the default family a table run gets, at INFO; the CLI prints it


def register_model(name: str, config: type, summary: str, *, head: PathSpec, features: PathSpec,
                   feature_side: Side | str, output: OutputKind | str, loss: LossFn,
                   sizes: tuple = (), min_epochs: float = 5.0) -> Callable:
    """Decorator for a builder ``fn(cfg, input_shape, num_classes) -> nn.Module``, with the family's
    declarations (see ``ModelFamily``). Raises ValueError for a side or output kind not listed.

    Example::

        @register_model("linear", LinearConfig, "one Linear layer", head="fc", features="fc",
                        feature_side="input", output="logits", loss=cross_entropy)
        def build_linear(cfg, input_shape, num_classes): ...
    """

    def add(build: Callable) -> Callable:
        MODELS.register(name)(ModelFamily(name, config, build, summary, head, features, Side(feature_side),
                                          OutputKind(output), loss, tuple(sizes), min_epochs))
        return build

    return add


def split_name(name: str, options: dict) -> tuple[str, dict]:
    """A model name and its options -> (family name, options), moving ``:ARCH`` into the options.

    >>> split_name("tv:resnet18", {"resize": 64})
    ('tv', {'resize': 64, 'arch': 'resnet18'})
    >>> split_name("cnn", {})
    ('cnn', {})
    """
    if ":" not in name:
        return name, dict(options)
    family, arch = name.split(":", 1)
    if "arch" not in {f.name for f in dataclasses.fields(MODELS.get(family).config)}:
        raise NeuroclassError(f"model '{name}': family '{family}' has no architectures to pick "
                              f"with ':'; use model.name={family}")
    if options.get("arch", arch) != arch:
        raise NeuroclassError(f"model '{name}' names arch '{arch}' but model.options.arch is "
                              f"'{options['arch']}'; give the architecture once")
    return family, {**options, "arch": arch}


def resolve(name: str, options: dict) -> tuple[ModelFamily, object]:
    """Check a model name and its options (unknown keys get a did-you-mean) -> (family, config)."""
    family_name, options = split_name(name, options)
    family = MODELS.get(family_name)
    return family, build_dataclass(family.config, options, "model.options.")


def family_options(name: str, options: dict):
    """Check a family's options (unknown keys get a did-you-mean) -> its config dataclass."""
    return resolve(name, options)[1]


def resolved_options(name: str, options: dict) -> dict:
    return dataclasses.asdict(family_options(name, options))


SIZE_WORDS = ("auto", "default")  # model.size values every family takes (models/sizing.py)
AUTO = "auto"  # model.name: the default family for the kind of data, once it is loaded
PHOTO_KIND = "photo"  # images that are photos (data/survey.py FolderSurvey.photo_like)
DEFAULT_FAMILY = {"image": "cnn", "table": "mlp", PHOTO_KIND: "resnet"}  # by Dataset.kind


def resolve_default_model(cfg: ModelConfig, kind: str) -> ModelConfig:
    """``cfg`` with model.name "auto" replaced by the default family for ``kind`` ("image": cnn,
    "table": mlp, PHOTO_KIND: resnet, for folders of photos, training/resolution.py; a table run logs
    the choice at INFO), then checked like ``check_model_config``.
    A named family is returned as it is: an image-only family on table rows keeps its own error.

    >>> resolve_default_model(ModelConfig(), "table").name
    'mlp'
    """
    if cfg.name != AUTO:
        return cfg
    name = DEFAULT_FAMILY[kind]
    if kind == "table":
        log.info("table data: using model %s (the default for feature rows; choose another with --model)", name)
    cfg = dataclasses.replace(cfg, name=name)
    check_model_config(cfg)
    return cfg


def check_model_config(cfg: ModelConfig) -> None:
    """Check a config's model section against the registered families, before any data loads:
    ``name`` (a family, did-you-mean), ``size`` (``auto``, ``default`` or one of the family's
    sizes) and ``options`` (each field's rule, then the family's ``validate``), with the size's
    preset under the options as the model will be built. Raises NeuroclassError naming the field.
    Name "auto" is checked once the data has chosen the family (``resolve_default_model``).

    >>> check_model_config(ModelConfig(name="cnn", size="huge"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    neuroclass.errors.NeuroclassError: The 'model.size' parameter must be auto, default or ... Got 'huge' instead.
    """
    if cfg.name == AUTO:  # the family, and so what its size and options mean, waits for the data
        return
    family_name, options = split_name(cfg.name, cfg.options)
    family = MODELS.get(family_name)
    sizes = dict(family.sizes)
    allowed = (f"auto, default or a size of {family.name} ({', '.join(sizes)})" if sizes
               else f"auto or default ({family.name} has no named sizes)")
    check_rule("model.size", cfg.size, rule(choices=SIZE_WORDS + tuple(sizes), doc=allowed)["rule"])
    # "auto" builds the defaults, or with a time budget whichever size fits it: options that fit
    # none of them fail (as every size would), options that fit one of them pass
    if cfg.size in sizes:
        presets = [sizes[cfg.size]]
    else:
        presets = [{}] + (list(sizes.values()) if cfg.size == "auto" else [])
    first_error = None
    for preset in presets:
        try:
            build_dataclass(family.config, {**preset, **options}, "model.options.")
            return
        except NeuroclassError as exc:
            first_error = first_error or exc
    raise first_error
