"""What a run's training did to its loss that explain's steps leave out.

The page steps through the plain loss of one example (the cross-entropy -log softmax(z)[true], its
gradient, one step on it). Training differed from that where the run set label smoothing
(train.label_smoothing), class weights (train.class_weight), a balanced sampler (data.sampler), an
L1 penalty (optim.l1), mixup or cutmix (augment.mixup / augment.cutmix), or where the family
declares a loss of its own (capsnet's margin loss). ``run_training_setup`` reads them from a run,
with the weights per class from its training split; ``setup_lines`` says each in one sentence, for
the page and the terminal alike.

Example::

    setup = run_training_setup(folder, folder.config(), model, seen, label=1, classes=2)
    setup_lines(setup, ["common", "rare"])[0]
    # -> 'class weights (train.class_weight=auto, N / (K n_k) over the training split): common 0.533 (360 ...'
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from neuroclass.config import Config
from neuroclass.errors import NeuroclassError, counted
from neuroclass.evaluation.explain_format import number
from neuroclass.models.layers import Classifier, cross_entropy
from neuroclass.runs import RunFolder
from neuroclass.training.trainer import class_weights, sampling_weights

SHOWN_CLASSES = 20  # classes named in a sentence; the JSON has them all


@dataclass(frozen=True)
class TrainingSetup:
    """How training's loss differed from the plain loss of one example that the page steps through.

    Arrays are per class (K,), in the run's class order: ``counts`` int64 training examples,
    ``weights`` float64 the loss weights of train.class_weight (None: no class weights, or not
    known), ``draws`` float64 how many times an epoch draws each training example of the class
    under data.sampler=balanced (None: a shuffle draws each once, or not known). ``missing``: why
    they are not known (the run's data could not be loaded). ``own_loss``: the loss the family
    declares, by name, when it is not the cross-entropy (capsnet's "margin loss"), read on the
    network's ``output`` ("logits" or "lengths"). ``mixing``: "mixup (augment.mixup=0.2)" and the
    like. ``example_loss``: the family's loss with the run's label smoothing and class weights on
    this example alone (a batch of one), where that is not the plain loss; else None."""

    label_smoothing: float = 0.0
    class_weight: str = "none"
    sampler: str = "shuffle"
    counts: np.ndarray | None = None
    weights: np.ndarray | None = None
    draws: np.ndarray | None = None
    missing: str | None = None
    own_loss: str | None = None
    output: str = "logits"
    l1: float = 0.0
    mixing: tuple[str, ...] = ()
    example_loss: float | None = None

    def record(self) -> dict:
        """The setup as JSON values (arrays as lists)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v.tolist() if isinstance(v, np.ndarray) else list(v) if isinstance(v, tuple) else v
                for k, v in values.items()}


def needs_training_labels(cfg: Config) -> bool:
    """The run's settings depend on its training split's class counts (class weights, a balanced sampler)."""
    return cfg.train.class_weight != "none" or cfg.data.sampler != "shuffle"


def run_training_setup(folder: RunFolder, cfg: Config, model: Classifier, seen: torch.Tensor,
                       label: int | None, classes: int) -> TrainingSetup | None:
    """``training_setup`` of the run in ``folder`` (config ``cfg``), loading its training split's
    labels when the settings need them; data that can no longer be loaded leaves the weights
    unknown (``missing`` says why) rather than failing the explanation."""
    train_y, missing = None, None
    if needs_training_labels(cfg):
        try:
            train_y = folder.load_data(quiet=True).part("train").y
        except NeuroclassError as exc:
            missing = str(exc)
    return training_setup(cfg, model, seen, label, classes, train_y, missing)


def training_setup(cfg: Config, model: Classifier, seen: torch.Tensor, label: int | None, classes: int,
                   train_y: torch.Tensor | None = None, missing: str | None = None) -> TrainingSetup | None:
    """How the training of ``model`` (a Classifier, config ``cfg``) differed from the plain
    cross-entropy of one example; None when it did not. ``seen``: the network's input (1, ...)
    float32, standardized; ``label``: the example's class index, or None; ``classes``: K;
    ``train_y``: the training split's labels (N,) int64, when known (else ``missing`` says why).
    The weights are the Trainer's own (training/trainer.py ``class_weights``, ``sampling_weights``)."""
    smoothing = float(cfg.train.label_smoothing)
    loss = model.family.loss
    own = None if loss is cross_entropy else getattr(loss, "__name__", "own loss").replace("_", " ")
    image = seen.ndim == 4  # augmentation applies to images only
    mixing = tuple(f"{name} (augment.{name}={value:g})"
                   for name, value in (("mixup", cfg.augment.mixup), ("cutmix", cfg.augment.cutmix))
                   if value and cfg.augment.enabled and image)
    if not (smoothing or own or needs_training_labels(cfg) or cfg.optim.l1 or mixing):
        return None
    counts = weights = draws = None
    if train_y is not None:
        labels = train_y.cpu()
        counts = np.bincount(labels.numpy(), minlength=classes)
        found = class_weights(labels, classes, cfg.train.class_weight, torch.device("cpu"))
        weights = None if found is None else found.double().numpy()
        draws = _draws(labels, cfg.data.sampler, classes)
    known = cfg.train.class_weight == "none" or weights is not None
    example = (_example_loss(model, seen, label, smoothing, weights)
               if label is not None and (smoothing or own) and known else None)
    return TrainingSetup(smoothing, cfg.train.class_weight, cfg.data.sampler, counts, weights, draws,
                         None if train_y is not None else missing, own, model.family.output.value,
                         float(cfg.optim.l1), mixing, example)


def _draws(labels: torch.Tensor, sampler: str, classes: int) -> np.ndarray | None:
    """(K,) float64: how many times an epoch of N draws, with the Trainer's sampling weights, draws
    each training example of a class, on average (0 for a class without examples); None for a shuffle."""
    per_example = sampling_weights(labels, sampler)
    if per_example is None:
        return None
    chance = (per_example / per_example.sum()).numpy()  # (N,) each draw's chance of each example
    y = labels.numpy()
    counts = np.bincount(y, minlength=classes)
    share = np.bincount(y, weights=chance, minlength=classes)  # (K,) each draw's chance of each class
    return np.divide(len(y) * share, counts, out=np.zeros(classes), where=counts > 0)


def _example_loss(model: Classifier, seen: torch.Tensor, label: int, smoothing: float,
                  weights: np.ndarray | None) -> float:
    """The family's loss, with the run's smoothing and class weights, on the one example ``seen``."""
    with torch.no_grad():
        output = model.net(seen)  # (1, K): what the loss reads (logits, or capsule lengths)
        weight = None if weights is None else torch.as_tensor(weights, dtype=output.dtype, device=output.device)
        return float(model.loss(output, torch.tensor([label], device=output.device), smoothing, weight))


def setup_words(setup: TrainingSetup, example: bool = False) -> str:
    """The settings in a few words; ``example``: only those in ``example_loss`` (the family's own
    loss, label smoothing, class weights).

    >>> setup = TrainingSetup(label_smoothing=0.1, class_weight="auto", sampler="balanced")
    >>> setup_words(setup), setup_words(setup, example=True)
    ('label smoothing 0.1, class weights and a balanced sampler', 'label smoothing 0.1 and class weights')
    """
    named = ((setup.own_loss, f"its own {setup.own_loss}"),
             (setup.label_smoothing, f"label smoothing {setup.label_smoothing:g}"),
             (setup.class_weight != "none", "class weights"),
             (setup.sampler != "shuffle" and not example, "a balanced sampler"),
             (setup.l1 and not example, f"an L1 penalty {setup.l1:g}"),
             *((not example, m.split(" ")[0]) for m in setup.mixing))
    parts = [words for given, words in named if given]
    if len(parts) < 2:
        return "".join(parts) or "nothing"
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _per_class(values: np.ndarray | None, setup: TrainingSetup, classes: list[str]) -> str:
    """The classes' ``values`` as "name value (n examples), ...", the first SHOWN_CLASSES of them, or
    why they are not known."""
    if values is None or setup.counts is None:
        return f"not shown, since the run's data could not be loaded ({setup.missing})"
    shown = [f"{name} {number(float(v), 3)} ({counted(int(n), 'example')})"
             for name, v, n in zip(classes[:SHOWN_CLASSES], values, setup.counts)]
    more = len(classes) - SHOWN_CLASSES
    return ", ".join(shown) + (f", and {counted(more, 'class', 'classes')} more in the JSON" if more > 0 else "")


def setup_lines(setup: TrainingSetup | None, classes: list[str]) -> list[str]:
    """One sentence per setting of ``setup`` (none for None), naming its config field, with the
    numbers per class of ``classes`` where it has them."""
    if setup is None:
        return []
    k, e, lines = len(classes), setup.label_smoothing, []
    if setup.own_loss:
        lines.append(f"the family trains with its own {setup.own_loss} on the network's {setup.output}, not with "
                     "the cross-entropy of the steps shown")
    if e:
        others = "the other class" if k == 2 else f"each of the other {k - 1}"
        lines.append(f"label smoothing {e:g} (train.label_smoothing): training's target was {number(1 - e + e / k, 3)} "
                     f"for the true class and {number(e / k, 3)} for {others}, rather than 1 and 0")
    if setup.class_weight != "none":
        lines.append(f"class weights (train.class_weight={setup.class_weight}, N / (K n_k) over the training "
                     f"split): {_per_class(setup.weights, setup, classes)}; a batch's loss is the weighted mean "
                     "sum_i w[y_i] L_i / sum_i w[y_i], so each example counts by its class's weight (alone, as "
                     "here, the weight cancels out)")
    if setup.sampler != "shuffle":
        lines.append(f"a balanced sampler (data.sampler={setup.sampler}): an epoch draws as many examples as the "
                     "training split holds, with replacement, each class about equally often; draws of each "
                     f"training example an epoch: {_per_class(setup.draws, setup, classes)} (a shuffle draws each "
                     "once)")
    lines += _balance_lines(setup)
    if setup.l1:
        lines.append(f"an L1 penalty (optim.l1={setup.l1:g}): each batch's loss adds {setup.l1:g} * sum |w| over "
                     "the weight matrices, the same for every example")
    lines += [f"{m}: training mixed pairs of images and their labels; it never read one image with its own "
              "label, as here" for m in setup.mixing]
    return lines


def _balance_lines(setup: TrainingSetup) -> list[str]:
    """What class weights and a balanced sampler do to the probabilities shown."""
    weighted, sampled = setup.class_weight != "none", setup.sampler != "shuffle"
    if weighted and sampled:
        return ["with both, class weights and a balanced sampler, a rare class counted more than a common one in "
                "training (each alone makes the classes count about equally), so the probabilities shown lean "
                "towards the rarer classes even more than either would make them"]
    if weighted or sampled:
        return ["with it, each class counted about equally in training, so the probabilities shown lean towards the "
                "rarer classes, compared with a run that trained on the training split's own proportions"]
    return []
