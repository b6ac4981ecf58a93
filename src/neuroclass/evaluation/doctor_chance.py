"""The doctor's "stuck at chance" rule: a model that learned nothing beyond guessing.

A network that gives every input the same probabilities scores the loss of that guess. For K
balanced classes that is ln K (the uniform guess) whatever the label smoothing, because smoothed
targets still sum to 1; in general the best constant guess is the smoothed class shares, and its
loss their entropy. Label smoothing moves the other end: the lowest loss a perfect model reaches is
the entropy of a smoothed one-hot target (0.199 for 2 classes at smoothing 0.1, 0.5 for 10), so how
far a loss is from chance is measured as a share of the way from the guess's loss down to that floor.

Three signs, any of which names the run (after the first epoch, which starts from chance anyway):
- every later epoch at chance: training loss within CHANCE_LOSS_SHARE of the way down and training
  accuracy within CHANCE_ACCURACY_SHARE of the way from the largest class's share to 100%;
- validation accuracy that stays at one class's share (what predicting that class for everything
  scores) over the last epochs;
- every test example predicted as one class while training accuracy is at chance.
A run whose loss falls and whose accuracy rises in every epoch is learning, only slowly: that is
the learning-rate-too-low finding's case, not this one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from neuroclass.errors import counted
from neuroclass.evaluation.doctor_run import Run, is_broken, lr_fix, make_finding, pct

STUCK_MIN_EPOCHS = 3  # the first epoch and at least two after it, to say the loss "stayed"
# At chance in an epoch: the training loss less than a tenth of the way from the guess's loss down to
# the lowest possible, and training accuracy less than a tenth of the way from the largest class's
# share to 100%. A 2-class photo folder trained from scratch (a CNN on 3x327x599 inputs) sat 3.6-4.6%
# of the way down with accuracy 50-53% in its last 4 epochs; a run that learns leaves this band in its
# first epochs (digits, 3 epochs: 58% of the way down after the first, 91% after the second).
CHANCE_LOSS_SHARE = 0.10
CHANCE_ACCURACY_SHARE = 0.10
# Validation accuracy within 2 points of a class's training share: stratified and shipped
# validation splits hold about the training shares, up to rounding on small splits.
COLLAPSE_SHARE_GAP = 0.02
NOT_CROSS_ENTROPY = ("capsnet",)  # trained with a margin loss, whose values ln K says nothing about
IMAGE_FAMILIES = ("cnn", "resnet", "inception", "vit", "capsnet", "tv")
SMALL_SIDE = 64  # a from-scratch network on photos starts more reliably at this side
SHOWN_EPOCHS = 6  # losses listed in the finding; longer runs show the first and last few


@dataclass(frozen=True)
class ChanceLevels:
    """Loss levels of a classification run: ``uniform`` ln K, ``guess`` the best constant guess
    (entropy of the smoothed class shares; ``uniform`` for balanced classes), ``floor`` the lowest
    possible (entropy of a smoothed one-hot target; 0 without smoothing), and the class ``shares``."""
    uniform: float
    guess: float
    floor: float
    shares: tuple[float, ...]

    @property
    def majority(self) -> float:
        return max(self.shares)

    def accuracy_bound(self) -> float:
        """The highest accuracy that still counts as guessing."""
        return self.majority + CHANCE_ACCURACY_SHARE * (1 - self.majority)


def _entropy(p) -> float:
    return -sum(x * math.log(x) for x in p if x > 0)


def chance_levels(classes: int, counts: Optional[dict], smoothing: Optional[float]) -> ChanceLevels:
    """The loss levels for ``classes`` (K >= 2) classes with training ``counts`` {name: n} (uniform
    shares when missing or not K of them) and label ``smoothing`` in [0, 1) (None: 0).

    >>> levels = chance_levels(2, {"a": 50, "b": 50}, 0.1)
    >>> round(levels.uniform, 3), round(levels.guess, 3), round(levels.floor, 3)
    (0.693, 0.693, 0.199)
    """
    eps = smoothing or 0.0
    total = sum(counts.values()) if counts and len(counts) == classes else 0
    shares = tuple(n / total for n in counts.values()) if total else (1 / classes,) * classes
    guess = _entropy([(1 - eps) * s + eps / classes for s in shares])
    floor = _entropy([1 - eps + eps / classes] + [eps / classes] * (classes - 1))
    return ChanceLevels(math.log(classes), guess, floor, shares)


@dataclass(frozen=True)
class Stuck:
    """What shows a run stuck at chance: ``history`` (every epoch after the first at chance),
    ``val`` (validation accuracy, epochs it held) and ``test`` (the one class predicted, how many
    test examples), each None where it does not show."""
    levels: ChanceLevels
    history: bool
    val: Optional[tuple[float, int]]
    test: Optional[tuple[str, int]]


def _learning_steadily(run: Run, levels: ChanceLevels) -> bool:
    """The loss falls and training accuracy rises in every epoch, from a start below ln K."""
    falling = all(run.loss[e] < run.loss[e - 1] for e in range(1, len(run.loss)))
    rising = all(run.accuracy[e] > run.accuracy[e - 1] for e in range(1, len(run.loss)))
    return run.loss[0] <= levels.uniform and falling and rising


def _at_chance(run: Run, levels: ChanceLevels, epoch: int) -> bool:
    """Epoch ``epoch`` (0-based) is no better than guessing, by loss (cross-entropy only) and accuracy."""
    loss_ok = (run.model in NOT_CROSS_ENTROPY
               or run.loss[epoch] >= levels.guess - CHANCE_LOSS_SHARE * (levels.guess - levels.floor))
    return loss_ok and run.accuracy[epoch] <= levels.accuracy_bound()


def _constant_validation(run: Run, levels: ChanceLevels) -> Optional[tuple[float, int]]:
    """(accuracy, epochs) when validation accuracy after the first epoch never beat guessing and
    held one class's share over the last epochs (at least two)."""
    later = run.val_accuracy[1:]
    if len(later) < STUCK_MIN_EPOCHS - 1 or any(v is None or v > levels.accuracy_bound() for v in later):
        return None
    held = next((k for k in range(len(later), 0, -1) if max(later[-k:]) - min(later[-k:]) < 1e-9), 1)
    if held < STUCK_MIN_EPOCHS - 1 or min(abs(later[-1] - s) for s in levels.shares) > COLLAPSE_SHARE_GAP:
        return None
    return later[-1], held


def _one_test_class(run: Run) -> Optional[tuple[str, int]]:
    """(class, count) when every test prediction is one class though at least two were tested."""
    rows = run.metrics.get("per_class") or {}
    if sum(1 for row in rows.values() if (row or {}).get("support")) < 2:
        return None
    predicted = {name: int((row or {}).get("predicted") or 0) for name, row in rows.items()}
    total = sum(predicted.values())
    top = max(predicted, key=predicted.get, default=None)
    return (top, total) if total and predicted[top] == total else None


def find_stuck(run: Run) -> Optional[Stuck]:
    """The signs of a run stuck at chance, or None for a run that learned (or is too short to tell)."""
    if run.classes < 2 or len(run.loss) < 2 or is_broken(run):
        return None
    levels = chance_levels(run.classes, run.facts.get("class_counts"), run.smoothing)
    if _learning_steadily(run, levels):
        return None
    long_enough = len(run.loss) >= STUCK_MIN_EPOCHS
    history = long_enough and all(_at_chance(run, levels, e) for e in range(1, len(run.loss)))
    val = _constant_validation(run, levels) if long_enough else None
    test = _one_test_class(run) if run.accuracy[-1] <= levels.accuracy_bound() else None
    return Stuck(levels, history, val, test) if history or val or test else None


def _losses(run: Run) -> str:
    """The training losses after the first epoch (at least two), e.g. "epochs 2-4: 0.694, 0.693, 0.693"."""
    later = [f"{x:.3g}" for x in run.loss[1:]]
    if len(later) > SHOWN_EPOCHS:
        later = later[:3] + ["..."] + later[-2:]
    return f"epochs 2-{len(run.loss)}: {', '.join(later)}"


def _levels_words(run: Run, levels: ChanceLevels) -> str:
    k = run.classes
    if abs(levels.guess - levels.uniform) < 5e-3:
        words = f"ln {k} = {levels.uniform:.3g} is the loss of a uniform guess over {k} classes"
    else:
        words = (f"{levels.guess:.3g} is the loss of always guessing the class shares (ln {k} = "
                 f"{levels.uniform:.3g} for a uniform guess)")
    if run.smoothing:
        words += f", {levels.floor:.3g} the lowest possible with label smoothing {run.smoothing:g}"
    return words


def _evidence(run: Run, stuck: Stuck) -> list[str]:
    levels, said = stuck.levels, []
    if stuck.history:
        said.append(f"the training loss stayed at chance after the first epoch ({_losses(run)}; "
                    f"{_levels_words(run, levels)}) and training accuracy at {pct(run.accuracy[-1])} "
                    f"(always guessing the largest class scores {pct(levels.majority)})")
    if stuck.val:
        accuracy, epochs = stuck.val
        said.append(f"validation accuracy was {pct(accuracy)} in each of the last {counted(epochs, 'epoch')}, "
                    "what predicting one class for everything scores")
    if stuck.test:
        said.append(f"it predicted '{stuck.test[0]}' for all {stuck.test[1]} test examples")
    if run.loss[0] > levels.uniform:
        said.append(f"the first epoch's loss, {run.loss[0]:.3g}, was above ln {run.classes}: its "
                    "steps were too large")
    return said


def _kind(run: Run) -> str:
    """"image", "table" or "" (unknown) from the facts, else the input's shape or the model family."""
    if run.kind:
        return run.kind
    if run.input_shape:
        return "image" if len(run.input_shape) == 3 else "table"
    return "image" if run.model in IMAGE_FAMILIES else ""


def _image_fixes(run: Run) -> list[str]:
    fixes = []
    side = max(run.input_shape[1:]) if len(run.input_shape) == 3 else None
    if side is None or side > SMALL_SIDE:
        now = f" (now {run.input_shape[1]}x{run.input_shape[2]})" if side else ""
        fixes.append(f"train on smaller images with --set data.image_size={SMALL_SIDE}{now}")
    if run.model != "resnet":
        fixes.append("or use --model resnet (residual blocks with batch norm start training more "
                     "reliably from scratch)")
    advice = run.facts.get("pretrained") or {}
    if advice.get("command"):
        weights = f" ({advice['weights']})" if advice.get("weights") else ""
        fixes.append(f"or start from ImageNet weights: {advice['command']}{weights}")
    return fixes


def _fix(run: Run) -> str:
    lower = lr_fix(run, 0.1, "lower")
    table = ("check that the feature columns carry the label (and that --label-column names the "
             "right one): a table model stuck at chance usually means they do not")
    kind = _kind(run)
    if kind == "table":
        return f"{lower}; {table}"
    if kind == "image":
        return "; ".join([lower] + _image_fixes(run))
    return (f"{lower}; for images, also --set data.image_size={SMALL_SIDE} or --model resnet; "
            f"for a table, {table}")


def stuck_at_chance(run: Run) -> Optional[dict]:
    """The rule: an error, since the weights of a run stuck at chance are no better than a guess."""
    stuck = find_stuck(run)
    if stuck is None:
        return None
    return make_finding("stuck_at_chance", "error", "The model learned nothing beyond guessing: "
                        + "; ".join(_evidence(run, stuck)) + ".", _fix(run))
