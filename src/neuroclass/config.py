"""The resolved configuration: frozen dataclasses, merged defaults < YAML file < --set overrides.

Every key is checked at load: an unknown key fails with a did-you-mean, a value of the wrong type or
out of range fails with a message that names the parameter, the rule and the value given. Each
field carries its rule (``rule(...)`` metadata, rules.py); a section whose fields constrain each
other checks them in its ``validate()``, which runs once every field has passed its own rule.

>>> cfg = load_config(overrides=["optim.lr=0.01", "train.epochs=3"])
>>> cfg.optim.lr, cfg.train.epochs
(0.01, 3)
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from neuroclass.errors import NeuroclassError
from neuroclass.io import write_text_atomic
from neuroclass.rules import build_dataclass, rule


def parse_duration(text: str | float | int) -> float:
    """Seconds from '90', '90s', '5m', '1.5h'. >>> parse_duration('5m') -> 300.0"""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", str(text))
        if not m:
            raise NeuroclassError(
                f"time budget (--time-budget / train.time_budget) '{text}' is not a duration; "
                "write e.g. 90s, 5m or 1h")
        seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if seconds <= 0:
        raise NeuroclassError(f"time budget (--time-budget / train.time_budget) must be > 0 seconds. "
                              f"Got {text} instead.")
    return seconds


def _colour_names() -> tuple[str, ...]:
    """The colour names data.background accepts (PIL's CSS names), read when a value is checked."""
    from PIL import ImageColor  # here, not at import: config loads without the imaging library

    return tuple(sorted(ImageColor.colormap))


@dataclass(frozen=True)
class DataConfig:
    source: str = "fashion-mnist"
    label_column: Optional[str] = None  # for CSV/Parquet tables
    categorical: list[str] = field(default_factory=list)  # table columns to one-hot encode
    # table columns used as features even though they look like row identifiers (a different
    # value in every row: text, or consecutive / index-named whole numbers), which are otherwise
    # left out with a warning; each must be a feature column of the table
    keep_columns: list[str] = field(default_factory=list)
    # table preprocessing, fitted on the training split only (data/table_prep.py). missing: "impute"
    # fills a missing number with the training split's median and a missing category with its most
    # frequent one, each with a 0/1 column saying it was missing; "error" refuses missing values
    missing: str = field(default="impute", metadata=rule(choices=("impute", "error")))
    # how numeric table columns are scaled (scikit-learn's StandardScaler, MinMaxScaler, RobustScaler)
    scaling: str = field(default="standard", metadata=rule(choices=("standard", "minmax", "robust", "none")))
    # feature selection after encoding: "mutual_info" keeps the data.max_features features of the
    # highest mutual information with the label; "l1" those an L1-penalised logistic regression
    # gives a weight (at most data.max_features when set)
    select: str = field(default="none", metadata=rule(choices=("none", "mutual_info", "l1")))
    max_features: Optional[int] = field(default=None, metadata=rule(gt=0))
    # how a table's categorical columns reach the model: "onehot" (a 0/1 column per category), or
    # "embedding" (the mlp learns a vector per category; its inputs carry one code per column)
    encoding: str = field(default="onehot", metadata=rule(choices=("onehot", "embedding")))
    # a table's date columns: "calendar" features (year, month, day of year, weekday), or "drop"
    dates: str = field(default="calendar", metadata=rule(choices=("calendar", "drop")))
    val_fraction: float = field(default=0.1, metadata=rule(ge=0, lt=1))  # carved from train
    test_fraction: float = field(default=0.2, metadata=rule(ge=0, lt=1))  # when no test split ships
    image_size: Optional[int] = field(default=None, metadata=rule(gt=0))  # resize folder images
    # how an image of another aspect ratio meets the square (or most common) size: "crop" scales
    # the shorter side to fit and keeps the centre, "pad" scales the longer side to fit and centres
    # it on data.background, "stretch" resizes both sides independently (shapes squeezed)
    aspect: str = field(default="crop", metadata=rule(choices=("crop", "pad", "stretch")))
    channels: Optional[int] = field(default=None, metadata=rule(choices=(1, 3)))
    max_bad_fraction: float = field(default=0.01, metadata=rule(ge=0, lt=1))  # corrupt images
    limit: Optional[int] = field(default=None, metadata=rule(gt=0))  # use the first N training rows
    # decode image folders once into a memory-mapped cache ($NEUROCLASS_CACHE, else
    # ~/.cache/neuroclass/images) so that later loads and epochs never decode a file again
    cache: bool = True
    # how training draws its examples: "shuffle" (each once an epoch), or "balanced" (with
    # replacement, each class about equally often: for imbalanced classes, with train.class_weight
    # the other remedy)
    sampler: str = field(default="shuffle", metadata=rule(choices=("shuffle", "balanced")))
    # labels that differ only by surrounding spaces, letter case or Unicode form ("yes", "yes ",
    # "Yes"): "merge" reads them as one class with a warning, "strict" refuses the data
    labels: str = field(default="merge", metadata=rule(choices=("merge", "strict")))
    # what transparent pixels (RGBA, LA, palette transparency) are composited on before training
    # and prediction, as a viewer shows them; gray images get the gray of this colour
    background: str = field(default="white", metadata=rule(
        choices=_colour_names, pattern=r"#[0-9a-fA-F]{6}",
        doc="a colour name (white, black, gray, ...) or #rrggbb"))
    # the largest width x height decoded; a larger file is skipped as unreadable (counted against
    # max_bad_fraction) before its pixels are read. Default: Pillow's decompression-bomb warning
    # limit (89,478,485, 0.25 GiB as RGB); at most its refusal limit, twice that, which Pillow
    # enforces itself. Raise it for large scans: --set data.max_pixels=150000000
    max_pixels: int = field(default=89_478_485, metadata=rule(
        gt=0, le=178_956_970, doc="a pixel count > 0 and <= 178956970 (Pillow refuses larger images)"))
    # stratified k-fold cross-validation (data/split.py): the examples left after the test split
    # are dealt into `folds` folds; fold number `fold` (1..folds) validates and the others train,
    # instead of carving data.val_fraction. Set together (`neuroclass train --cv K` sets both for
    # each of its K runs); the test split stays the one made without folds
    folds: Optional[int] = field(default=None, metadata=rule(ge=2))
    fold: Optional[int] = field(default=None, metadata=rule(ge=1))
    # images -> hand-made feature rows for a classical family (--model svm, xgboost, ...):
    # histograms of oriented gradients, of local binary patterns, or both (scikit-image;
    # classical/features.py), computed once per dataset and cached beside the image cache
    features: str = field(default="none", metadata=rule(choices=("none", "hog", "lbp", "hog+lbp")))

    def validate(self) -> None:
        """Validation and test are carved from the same examples: something must be left to train.
        A fold number needs a number of folds, and lies within it. Mutual-information selection
        needs the number of features to keep, which only a selection takes."""
        total = self.val_fraction + self.test_fraction
        if total >= 1:
            raise NeuroclassError(f"data.val_fraction + data.test_fraction must be < 1 (the rest trains). "
                                  f"Got {self.val_fraction:g} + {self.test_fraction:g} = {total:g} instead.")
        if (self.folds is None) != (self.fold is None):
            given, missing = ("data.folds", "data.fold") if self.fold is None else ("data.fold", "data.folds")
            raise NeuroclassError(f"The '{given}' parameter needs '{missing}' as well (data.folds: how many "
                                  f"folds, data.fold: the one that validates, 1..folds). Got "
                                  f"data.folds={self.folds}, data.fold={self.fold} instead.")
        if self.folds is not None and self.fold > self.folds:
            raise NeuroclassError(f"The 'data.fold' parameter must be <= data.folds ({self.folds}). "
                                  f"Got {self.fold} instead.")
        if self.select == "mutual_info" and self.max_features is None:
            raise NeuroclassError("data.select=mutual_info needs data.max_features, the number of "
                                  "features to keep; add e.g. --set data.max_features=20")
        if self.max_features is not None and self.select == "none":
            raise NeuroclassError(f"data.max_features={self.max_features} takes effect only with "
                                  "data.select=mutual_info or l1; add --set data.select=mutual_info or drop it")


@dataclass(frozen=True)
class ModelConfig:
    # name, size and options are checked against the registered families (models/registry.py
    # check_model_config), which this layer does not import. "auto": the default for the data,
    # cnn for images and mlp for table rows, chosen once the data is loaded (pipeline.prepare)
    name: str = "auto"
    init: str = field(default="default", metadata=rule(choices=('default', 'he', 'xavier')))
    options: dict = field(default_factory=dict)  # the family's own settings, checked by the family
    # a named size of the family (`neuroclass models` lists them), "default" (the family's
    # defaults), or "auto": with a time budget, the largest size whose measured speed leaves
    # enough epochs (models/sizing.py); without one, the defaults. model.options win over a size.
    size: str = "auto"
    # starting weights (at most one; see models/transfer.py): torchvision's ImageNet weights for
    # tv:ARCH, a local .safetensors / state-dict file, or an earlier run folder
    pretrained: bool = False
    weights: Optional[str] = None
    from_run: Optional[str] = None


@dataclass(frozen=True)
class OptimConfig:
    name: str = field(default="adamw", metadata=rule(choices=('sgd', 'adam', 'adamw', 'rmsprop')))
    lr: float = field(default=4e-3, metadata=rule(gt=0))  # peak learning rate
    momentum: float = field(default=0.9, metadata=rule(ge=0, lt=1))
    nesterov: bool = False
    weight_decay: float = field(default=5e-4, metadata=rule(ge=0))  # L2
    l1: float = field(default=0.0, metadata=rule(ge=0))  # L1 penalty on weights, added to the loss
    schedule: str = field(default="onecycle",
                          metadata=rule(choices=("constant", "step", "cosine", "onecycle")))
    warmup: float = field(default=0.08, metadata=rule(ge=0, lt=1))  # fraction of training
    step_every: float = field(default=0.33, metadata=rule(gt=0, le=1))  # step schedule period
    gamma: float = field(default=0.1, metadata=rule(gt=0, le=1))  # step schedule factor
    # fine-tuning from transferred weights: each block group nearer the input gets this factor
    # more of the rate (1 = the same rate everywhere)
    layer_decay: float = field(default=0.7, metadata=rule(gt=0, le=1))

    def validate(self) -> None:
        """Nesterov momentum exists only for SGD with a momentum (torch.optim.SGD)."""
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise NeuroclassError(f"optim.nesterov=true needs optim.name=sgd and optim.momentum > 0. "
                                  f"Got optim.name={self.name!r}, optim.momentum={self.momentum:g} instead.")


@dataclass(frozen=True)
class AugmentConfig:
    enabled: bool = False
    # with a time budget that leaves the model >= 4 epochs, turn on horizontal flips (when mirrored
    # images keep their class: data/symmetry.py), and from 10 epochs on one-pixel shifts (per 28 px
    # of side), even if enabled is false; false: never (training/budget.py)
    auto: bool = True
    flip: bool = True  # horizontal flip with probability 1/2
    rotation: float = field(default=10.0, metadata=rule(ge=0))  # max degrees
    zoom: float = field(default=0.1, metadata=rule(ge=0, lt=1))  # max relative scale change
    translate: float = field(default=0.1, metadata=rule(ge=0, lt=1))  # max shift, fraction of size
    # max whole-pixel shift per axis (random crop of the zero-padded image, nothing resampled)
    shift: int = field(default=0, metadata=rule(ge=0))
    erase: float = field(default=0.0, metadata=rule(ge=0, le=1))  # cutout probability per sample
    erase_size: float = field(default=0.5, metadata=rule(gt=0, le=1))  # max cutout side, fraction
    # random resized crop (Szegedy et al. 2015, torchvision RandomResizedCrop): the smallest share
    # of the image's area a crop keeps, at an aspect ratio in [3/4, 4/3], scaled back to the
    # input size; 0 = off. Replaces zoom and translate when set
    crop: float = field(default=0.0, metadata=rule(ge=0, lt=1))
    brightness: float = field(default=0.0, metadata=rule(ge=0, lt=1))  # max relative change
    contrast: float = field(default=0.0, metadata=rule(ge=0, lt=1))  # max relative change
    saturation: float = field(default=0.0, metadata=rule(ge=0, lt=1))  # max relative change, colour only
    mixup: float = field(default=0.0, metadata=rule(ge=0))  # Beta(alpha, alpha) alpha; 0 = off
    cutmix: float = field(default=0.0, metadata=rule(ge=0))  # Beta alpha; both set: 1/2 each batch

    # off (0) unless asked for, and applied only when augmentation is enabled
    OFF_BY_DEFAULT = ("shift", "crop", "erase", "brightness", "contrast", "saturation", "mixup", "cutmix")

    def validate(self) -> None:
        """An augmentation asked for (off by default) with augmentation off would silently do nothing."""
        asked = [f"augment.{name}={getattr(self, name):g}" for name in self.OFF_BY_DEFAULT
                 if getattr(self, name)]
        if asked and not self.enabled:
            verb = "takes" if len(asked) == 1 else "take"
            raise NeuroclassError(f"{', '.join(asked)} {verb} effect only with augment.enabled=true; "
                                  "add --set augment.enabled=true or drop it")


@dataclass(frozen=True)
class TrainConfig:
    epochs: Optional[int] = field(default=None, metadata=rule(gt=0))  # None: 8, or until the budget
    # None: 128, lowered for small training sets so that an epoch has at least 50 steps
    batch_size: Optional[int] = field(default=None, metadata=rule(gt=0))
    # seconds, whole run: a number or a duration ('90s', '5m', '1.5h')
    time_budget: Optional[float] = field(default=None, metadata=rule(gt=0, parse=parse_duration))
    patience: int = field(default=0, metadata=rule(ge=0))  # early stopping; 0 = off
    label_smoothing: float = field(default=0.1, metadata=rule(ge=0, lt=1))
    # "auto": each class's loss weighted by N / (K * n_k) of the training split (scikit-learn's
    # "balanced"), so that a rare class counts as much as a common one; "none": every example alike
    class_weight: str = field(default="none", metadata=rule(choices=("none", "auto")))
    # per-step decay of an exponential moving average of the weights, which is what validation sees
    # and training returns (training/ema.py); 0 = the last step's weights
    ema: float = field(default=0.99, metadata=rule(ge=0, lt=1))
    # seeds every generator of a run; NumPy and scikit-learn take 0 .. 2**32 - 2 (the validation
    # split uses seed + 1)
    seed: int = field(default=0, metadata=rule(ge=0, le=2**32 - 2))
    # the form is checked here, whether the device exists when a run starts (device.pick_device)
    device: str = field(default="auto", metadata=rule(
        choices=("auto", "cpu", "mps", "cuda"), pattern=r"cuda:\d+", doc="auto, cpu, mps, cuda or cuda:N"))
    threads: Optional[int] = field(default=None, metadata=rule(gt=0))
    channels_last: bool = True
    compile: bool = False  # torch.compile the model for training (pays off only on long runs)
    eval_batch_size: int = field(default=256, metadata=rule(gt=0))
    # test-time augmentation for every prediction of the trained model (inference/views.py): "auto"
    # keeps the mirror-image average only where it raises validation accuracy (clothes yes, digits
    # no), and for a model trained with random shifts judges shifted views too (5x / 10x passes)
    tta: str = field(default="auto", metadata=rule(choices=("auto", "none", "flip", "shift", "flip+shift")))
    # the command line shows no progress and no log lines (the library itself never prints); kept in
    # config.yaml so that a replayed run is as quiet
    quiet: bool = False
    # transferred weights: epochs that train only a new head on the frozen backbone
    # (None: 1 when the head is new, else 0); freeze: keep the backbone frozen throughout
    head_epochs: Optional[int] = field(default=None, metadata=rule(ge=0))
    freeze: bool = False
    # a run folder's checkpoint (training/checkpoint.py) is written after every epoch and, inside
    # longer epochs, every this many minutes of training; 0 = after epochs only
    checkpoint_minutes: float = field(default=5.0, metadata=rule(ge=0))
    # the largest share of training time that epoch-end checkpoints take: an epoch's checkpoint is
    # skipped while the last one is younger than its write time x (1 - share) / share (a 120 ms
    # write on 0.1 s epochs: one every ~2.3 s at 0.05); 1 = after every epoch
    checkpoint_share: float = field(default=0.05, metadata=rule(gt=0, le=1))

    def validate(self) -> None:
        """Head-only epochs come before the backbone trains: not with a backbone frozen throughout,
        and fewer than all epochs (all of them is what train.freeze says)."""
        if self.head_epochs and self.freeze:
            raise NeuroclassError(f"train.head_epochs={self.head_epochs} has no effect with "
                                  "train.freeze=true (the backbone stays frozen throughout); drop one of them")
        if self.head_epochs and self.epochs is not None and self.head_epochs >= self.epochs:
            raise NeuroclassError(f"train.head_epochs must be < train.epochs ({self.epochs}), or the "
                                  f"backbone never trains. Got {self.head_epochs} instead; "
                                  "use train.freeze=true to train only the head")


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs"


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise NeuroclassError(f"--set {dotted}: '{part}' is not a section")
    node[parts[-1]] = value


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(item: str) -> tuple[str, Any]:
    """'optim.lr=0.1' -> ('optim.lr', 0.1); values are read as YAML scalars."""
    if "=" not in item:
        raise NeuroclassError(f"--set '{item}' needs the form section.key=value, e.g. optim.lr=0.01")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None,
                values: dict | None = None) -> Config:
    """Defaults < YAML file at ``path`` < ``values`` (a nested dict) < ``overrides`` ('a.b=c')."""
    return build_dataclass(Config, _tree(path, overrides, values), "")


def given_keys(path: str | os.PathLike | None = None, overrides: list[str] | None = None,
               values: dict | None = None) -> set[str]:
    """The dotted keys that ``load_config`` with the same arguments takes from them rather than
    from the defaults: the file's, ``values``' and ``overrides``' leaves ('optim.lr',
    'model.options.hidden', ...). Raises NeuroclassError as ``load_config`` does.

    >>> sorted(given_keys(overrides=["optim.lr=0.004"], values={"train": {"epochs": 3}}))
    ['optim.lr', 'train.epochs']
    """
    def leaves(tree: dict, prefix: str) -> set[str]:
        return set().union(*[leaves(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}"}
                             for k, v in tree.items()])

    return leaves(_tree(path, overrides, values), "")


def _tree(path: str | os.PathLike | None, overrides: list[str] | None, values: dict | None) -> dict:
    """The nested mapping of what the file at ``path``, ``values`` and ``overrides`` set, merged."""
    tree: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise NeuroclassError(f"config file '{p}' does not exist; check the --config path")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise NeuroclassError(f"config file '{p}' is not valid YAML: {exc}".splitlines()[0])
        if not isinstance(loaded, dict):
            raise NeuroclassError(f"config file '{p}' must hold a mapping of sections")
        tree = _merge(tree, loaded)
    if values:
        tree = _merge(tree, values)
    for item in overrides or []:
        key, value = parse_override(item)
        _set_path(tree, key, value)
    return tree


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | os.PathLike) -> None:
    write_text_atomic(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
