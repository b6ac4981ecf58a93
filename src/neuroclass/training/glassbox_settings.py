"""The glass-box network's settings in a run's config: which config keys it trains with, what fills
the ones a user left unset, and the network's options that follow from them.

What the config has a key for comes from the config, the rest from ``model.options`` (the preset
and the network's shape: hidden, activation, output, loss, targets, dropout, batch_norm):

    optim.name          -> optimizer: sgd (with optim.momentum > 0: "momentum"), adam, rmsprop
    optim.lr            -> lr
    optim.momentum      -> momentum (0: plain sgd)
    optim.weight_decay  -> l2 (added to the weights' gradients: L2, not AdamW's decoupled decay)
    optim.l1            -> l1
    model.init          -> init (he, xavier; default: the preset's)
    train.batch_size    -> batch_size
    train.epochs        epochs (None: 8, or as many as the time budget allows)
    train.patience      early stopping on the validation loss, the best epoch's weights kept
    train.seed          the starting weights, the dropout masks and the order of the examples
    train.threads       BLAS threads while training (None: 1)

The rule: a value the user gives (``--set``, ``--config``, the API's arguments) is the value the
network trains with; a setting the user leaves unset takes the preset's value (the modern preset:
adam, lr 1e-3, batches of 128; the classic one: plain sgd, lr 0.1, one example per update), with
momentum 0 and no weight decay or L1. Under a time budget without train.epochs, train.patience
left unset is BUDGET_PATIENCE. ``glassbox_config`` writes these values into the config when the
config is built (api.build_config, which knows what was given), so that config.yaml, model.json,
the report, ``doctor``, a resume and a search all read the settings that trained.

A config built without that record (``load_config``, ``Config()``) that still holds
optim.name=adamw, the config's default, which the network does not have, is resolved when its run
starts, its values equal to the config's defaults counting as unset; a config holding one of the
network's optimisers is taken as it is. Settings the network has no use for (NO_EFFECT: a
learning-rate schedule, Nesterov momentum, class weights, label smoothing, a weight average, ...)
are set to their "none" values when unset and fail when given another value, in one line naming
the key, why the network has no use for it and the fix (NO_EFFECT_WHY): class weights, a balanced
sampler (data.sampler=balanced) and augmentation (augment.enabled=true) among them, which only the
torch families train with.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any, Optional

from neuroclass.config import Config
from neuroclass.errors import NeuroclassError
from neuroclass.glassbox import GlassboxOptions, glassbox_options
from neuroclass.registry import closest
from neuroclass.runs.glassbox_module import GLASSBOX

# model.options keys that the config sets instead
CONFIG_KEYS = {"lr": "optim.lr", "optimizer": "optim.name", "momentum": "optim.momentum", "l1": "optim.l1",
               "l2": "optim.weight_decay", "init": "model.init", "batch_size": "train.batch_size"}
# settings the glass-box network has no use for, each with the value that means "none of it":
# filled in when unset, refused when set to anything else
NO_EFFECT: dict[str, Any] = {
    "optim.nesterov": False, "optim.schedule": "constant", "optim.warmup": 0.0, "optim.step_every": 0.33,
    "optim.gamma": 0.1, "optim.layer_decay": 0.7, "train.label_smoothing": 0.0, "train.ema": 0.0,
    "train.class_weight": "none", "train.compile": False, "train.head_epochs": None, "train.freeze": False,
    "data.sampler": "shuffle", "augment.enabled": False}
_CONSTANT_LR = "it trains at a constant learning rate"
_NO_TRANSFER = "it starts from no transferred weights"
# why the network has no use for each NO_EFFECT setting: the refusal's words
NO_EFFECT_WHY: dict[str, str] = {
    "optim.nesterov": "its momentum is plain momentum", "optim.schedule": _CONSTANT_LR, "optim.warmup": _CONSTANT_LR,
    "optim.step_every": _CONSTANT_LR, "optim.gamma": _CONSTANT_LR, "optim.layer_decay": _NO_TRANSFER,
    "train.label_smoothing": "its loss has no label smoothing", "train.ema": "it keeps no weight average",
    "train.class_weight": "its loss weighs every example alike", "train.compile": "it runs in NumPy, not torch",
    "train.head_epochs": _NO_TRANSFER, "train.freeze": _NO_TRANSFER,
    "data.sampler": "it draws every training example once an epoch, in a shuffled order",
    "augment.enabled": "it trains on the examples as they are, never augmented"}
# the settings that a torch family trains with: the refusal offers one
TORCH_ONLY = ("train.class_weight", "data.sampler", "augment.enabled")
# Early stopping under a time budget without train.epochs, unless train.patience is given: the
# network trains at a constant learning rate, so without it a budget of minutes runs thousands of
# epochs past the best one. 10 epochs without a lower validation loss: scikit-learn's
# MLPClassifier (n_iter_no_change=10), the same kind of network. (The torch Trainer has no default
# patience: its budgeted runs anneal the learning rate to the deadline instead.)
BUDGET_PATIENCE = 10
UNRESOLVED_OPTIMIZER = "adamw"  # the config's default optim.name, which the network does not have


def model_options(options: dict) -> GlassboxOptions:
    """The family's options from ``model.options``: the preset's values under the given ones.
    Raises NeuroclassError for a key the config sets instead (naming the config key to use), an
    unknown key (listing the keys model.options takes), and as ``glassbox_options`` does."""
    accepted = [f.name for f in dataclasses.fields(GlassboxOptions) if f.name not in CONFIG_KEYS]
    for key in options:
        if key in CONFIG_KEYS:
            raise NeuroclassError(f"model.options.{key}: the glassbox family takes it from {CONFIG_KEYS[key]}; "
                                  f"use --set {CONFIG_KEYS[key]}=... instead")
        if key not in accepted:
            close = closest(key, accepted)  # suggested as the whole key, as it was given
            raise NeuroclassError(f"unknown config key 'model.options.{key}'."
                                  + (f" Did you mean 'model.options.{close}'?" if close else "")
                                  + f" Valid keys here: {', '.join(accepted)}.")
    return glassbox_options(options)


def _get(cfg: Config, dotted: str) -> Any:
    section, key = dotted.split(".")
    return getattr(getattr(cfg, section), key)


def _with(cfg: Config, values: dict[str, Any]) -> Config:
    """``cfg`` with each dotted key of ``values`` ("optim.lr") set."""
    sections: dict[str, dict] = {}
    for dotted, value in values.items():
        section, key = dotted.split(".")
        sections.setdefault(section, {})[key] = value
    return dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), **changes)
                                       for name, changes in sections.items()})


def _changed(cfg: Config, keys: Collection[str]) -> set[str]:
    """The ``keys`` whose values in ``cfg`` differ from the config's defaults."""
    default = Config()
    return {key for key in keys if _get(cfg, key) != _get(default, key)}


def unset_values(cfg: Config) -> dict[str, Any]:
    """What each setting the user leaves unset is for a glassbox run of ``cfg``: the preset's
    optimiser, learning rate, batch size, L1 and L2 (model.options.preset, default modern),
    momentum 0, NO_EFFECT's values, and BUDGET_PATIENCE under a time budget without train.epochs
    (with a validation split to watch). Raises NeuroclassError for bad model.options."""
    options = model_options(cfg.model.options)
    name, momentum = options.optimizer, 0.0
    if name == "momentum":  # not a config value: sgd with the options' momentum
        name, momentum = "sgd", options.momentum
    values = {"optim.name": name, "optim.lr": options.lr, "optim.momentum": momentum,
              "optim.weight_decay": options.l2, "optim.l1": options.l1, "train.batch_size": options.batch_size,
              **NO_EFFECT}
    if cfg.train.time_budget and cfg.train.epochs is None and cfg.data.val_fraction > 0:
        values["train.patience"] = BUDGET_PATIENCE
    return values


def _counted_as_given(cfg: Config, unset: dict[str, Any]) -> set[str]:
    """What a config built without a record of what was set counts as set: with optim.name=adamw
    (not resolved yet) the settings that differ from the config's defaults; else every setting
    but an automatic batch size (None) and the NO_EFFECT settings left at the config's defaults."""
    given = _changed(cfg, NO_EFFECT)
    if cfg.optim.name == UNRESOLVED_OPTIMIZER:
        return given | _changed(cfg, unset)
    kept = {key for key in unset if key not in NO_EFFECT}
    if cfg.train.batch_size is None:
        kept.discard("train.batch_size")
    return given | kept


def _refuse_no_effect(cfg: Config, keys: Collection[str]) -> None:
    """NeuroclassError for the first of ``keys`` (NO_EFFECT's) whose value is not its "none"."""
    for key in keys:
        if key in NO_EFFECT and _get(cfg, key) != NO_EFFECT[key]:
            fix = "drop it, or use a torch family for it (e.g. --model mlp)" if key in TORCH_ONLY else "drop it"
            raise NeuroclassError(f"{key}={_get(cfg, key)} has no effect on the glassbox family "
                                  f"({NO_EFFECT_WHY[key]}); {fix}")


def glassbox_config(cfg: Config, given: Optional[Collection[str]] = None) -> Config:
    """``cfg`` holding the settings a glassbox run trains with (the rule in the module's
    docstring): each setting not in ``given`` (dotted keys the user set, e.g. {"optim.lr"}) takes
    its ``unset_values`` value. ``given`` None: a config built without that record, resolved as
    the module's docstring says (a resolved config comes back unchanged). A config of another
    family is returned as it is. Raises NeuroclassError for optim.name=adamw given (the network
    has no AdamW), a NO_EFFECT setting given another value, and bad model.options."""
    if cfg.model.name != GLASSBOX:
        return cfg
    unset = unset_values(cfg)
    if given is None:
        given = _counted_as_given(cfg, unset)
    else:
        _refuse_no_effect(cfg, given)
    if "optim.name" in given and cfg.optim.name == UNRESOLVED_OPTIMIZER:
        raise NeuroclassError("optim.name=adamw: the glassbox network has no AdamW (decoupled weight decay); "
                              "use --set optim.name=adam (optim.weight_decay is then an L2 penalty), sgd or rmsprop")
    return _with(cfg, {key: value for key, value in unset.items() if key not in given})


def run_options(cfg: Config) -> GlassboxOptions:
    """The network's options for a run of ``cfg`` (resolved by ``glassbox_config`` first):
    ``model.options`` over the preset, then the config's settings (the table in the module's
    docstring). Raises NeuroclassError for a setting the network cannot use, naming it."""
    cfg = glassbox_config(cfg)
    _refuse_no_effect(cfg, NO_EFFECT)
    values = dataclasses.asdict(model_options(cfg.model.options))
    optim = cfg.optim
    values.update(lr=optim.lr, momentum=optim.momentum, l1=optim.l1, l2=optim.weight_decay,
                  optimizer="momentum" if optim.name == "sgd" and optim.momentum > 0 else optim.name)
    if cfg.train.batch_size is not None:
        values["batch_size"] = cfg.train.batch_size
    if cfg.model.init != "default":
        values["init"] = cfg.model.init
    return glassbox_options(values)


# The default search space of `neuroclass tune --model glassbox` (--space's YAML form), over settings
# the network uses: the learning rate (log-uniform, wide enough for plain SGD's 0.1 and Adam's 1e-3),
# the optimiser (sgd: plain gradient descent, optim.momentum being 0 unless given), the hidden
# layers' widths (comma-separated text as --set takes it: Optuna's choices are plain values), their
# activation, and the batch size.
SEARCH_SPACE = {
    "optim.lr": {"low": 1e-4, "high": 0.2, "log": True},
    "optim.name": ["sgd", "adam", "rmsprop"],
    "model.options.hidden": ["64", "128", "200", "256,128"],
    "model.options.activation": ["relu", "tanh", "sigmoid"],
    "train.batch_size": [16, 32, 64, 128, 256],
}
# --sampler grid: 2 x 3 x 2 = 12 trials
SEARCH_GRID = {"optim.name": ["sgd", "adam"], "optim.lr": [1e-3, 1e-2, 1e-1], "model.options.hidden": ["100", "200"]}
