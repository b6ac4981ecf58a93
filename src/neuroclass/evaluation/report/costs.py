"""What each part of the report costs on a run's data, and the time a budget holds back for it.

The cost models are measured (2 shared CPU cores, a training process's report): seconds of each
part's own work per example or per pixel value, plus forward passes of the model, whose seconds the
run measures itself (its validation passes while it trains, its test pass after). The report of a
budgeted run reuses the logits that training computed (inputs.FromTraining), so it needs no pass of
its own beyond its optional parts.

Before training, ``report_reserve`` says what the budget holds back for the report: the parts
every report has (``finish_seconds``) in full, and the optional parts (``report_parts``) at a
share of their full size that grows with the budget (all of it from FULL_BUDGET on), so that a
short budget keeps most of its time for training and its report samples or skips the rest. The
robustness curves, 18 forward passes an image, are held back only where that share reaches their
smallest sample; the other parts get at least theirs.

Example::

    sizes = ReportSizes("image", (1, 28, 28), 10, train=54000, val=6000, evaluated=10000)
    report_reserve(sizes, budget=60.0)  # a 60 s Fashion-MNIST run
    # -> Reserve(seconds=7.99, examples=1928)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

from neuroclass.data.dataset import Dataset
from neuroclass.data.split import Splits
from neuroclass.evaluation.report.collect import MAX_SAMPLE_CLASSES, MISTAKES, SAMPLES_PER_CLASS
from neuroclass.evaluation.report.diagnostics import DEAD_RELU_EXAMPLES, MAX_PAIRS, MISLABELLED, ROBUSTNESS_EXAMPLES
from neuroclass.evaluation.report.importance import COPY_PER_VALUE, REPEATS
from neuroclass.evaluation.report.inputs import ReportInputs
from neuroclass.evaluation.report.timebox import Part, TimeBox
from neuroclass.evaluation.robustness import CORRUPTIONS
from neuroclass.inference.views import PASSES

# A budget of FULL_BUDGET seconds or more holds back time for every optional part at full size; a
# shorter one for that share of it (see report_reserve).
FULL_BUDGET = 600.0
# Parts every report has: the sections from the logits (metrics, calibration fit on the validation
# split: ~0.9 s for 6,000 examples), the model's FLOP count, the files. Seconds.
FINISH_FIXED = 0.6
FINISH_PER_EXAMPLE = 60e-6  # per validation and evaluated example
# the process's end after the report (the interpreter's teardown of torch and the rest: 1.1-1.2 s
# measured after a `train`), kept back so that the command, not only the report, ends in time
EXIT = 1.0
RUN_FILES = 0.5  # the run folder's files, written between training and the report
# Charts: importing matplotlib ~0.5 s, then ~0.15-0.35 s a chart (6 at most: robustness for images,
# feature importance for tables), the confusion matrix growing with the classes (10 classes 0.34 s,
# 50 classes 0.77 s).
CHART_IMPORT, CHART_SECONDS, CHARTS, CHART_PER_CLASS = 0.5, 0.3, 6, 0.011
# Pictures of examples (PNG data URIs): ~0.2 ms for a 28x28 image, 3 ms for a 300x400 photo.
PICTURE_SECONDS, PICTURE_PER_VALUE = 0.3e-3, 10e-9
# Leakage (data/leakage.py): PCA projection and radius search, ~60-200 ns per pixel value (or
# feature) of the training and evaluated examples (Fashion-MNIST 3.5 s, random 3x64x64 images
# 180 ns); hashing ~5 us an example.
LEAKAGE_FIXED, LEAKAGE_PER_VALUE, LEAKAGE_PER_EXAMPLE = 0.3, 150e-9, 5e-6
LEAST_LEAKAGE = 1000  # training examples: fewer find too few of the duplicates to be worth it
# Robustness (evaluation/robustness.py): the corruptions themselves cost ~1 ms an image plus
# ~0.35 us a pixel value (8x8: 1.2 ms, 28x28: 1.1 ms, 3x64x64: 5.2 ms, 3x128x128: 18 ms).
ROBUSTNESS_IMAGE, ROBUSTNESS_PER_VALUE = 1e-3, 0.35e-6
ROBUSTNESS_PASSES = 2 + sum(level != identity for levels, identity, _ in CORRUPTIONS.values() for level in levels)
LEAST_ROBUSTNESS = 100  # images: fewer give curves too noisy to read
LEAST_DEAD_RELU = 128
MISLABEL_PER_VALUE = 0.1e-6  # per probability (examples x classes)
IMPORTANCE_FIXED = 0.05  # permutation importance's set-up (scikit-learn's checks), seconds
FORWARD_FALLBACK = 2e-3  # seconds of a forward pass of an example, for a run that recorded none


@dataclass(frozen=True)
class ReportSizes:
    """The sizes a report's cost depends on: ``kind`` "image" or "table", one example's
    ``input_shape``, the number of ``classes``, and the examples of the training and validation
    splits and of the evaluated data."""

    kind: str
    input_shape: tuple[int, ...]
    classes: int
    train: int
    val: int
    evaluated: int

    @classmethod
    def of(cls, dataset: Dataset, splits: Splits) -> "ReportSizes":
        """The sizes of a report on ``splits``' test split."""
        return cls(dataset.kind, tuple(dataset.input_shape), len(dataset.classes), len(splits.train),
                   len(splits.val) if splits.val is not None else 0,
                   len(splits.test) if splits.test is not None else 0)

    @property
    def values(self) -> int:
        """Pixel values (or features) of one example."""
        return math.prod(self.input_shape)


@dataclass(frozen=True)
class Reserve:
    """What a budget holds back for the report: ``seconds`` of work, and ``examples`` of forward
    passes (single-view units) that the trainer prices at its measured evaluation speed."""

    seconds: float = 0.0
    examples: int = 0


def report_parts(s: ReportSizes) -> list[Part]:
    """The report's optional parts on data of sizes ``s``, most wanted first."""
    images = s.kind == "image"
    pictures = SAMPLES_PER_CLASS * min(s.classes, MAX_SAMPLE_CLASSES) + MISTAKES + 2 * MAX_PAIRS + MISLABELLED
    robust, dead = min(ROBUSTNESS_EXAMPLES, s.evaluated), min(DEAD_RELU_EXAMPLES, s.train)
    leak_each = LEAKAGE_PER_EXAMPLE + s.values * LEAKAGE_PER_VALUE
    parts = [
        Part("charts", "charts", 1, 1, fixed=CHART_IMPORT + CHARTS * CHART_SECONDS
             + CHART_PER_CLASS * s.classes),
        Part("mislabelled", "mislabel search", s.evaluated, s.evaluated,
             per_example=MISLABEL_PER_VALUE * s.classes),
        Part("leakage", "leakage check", s.train, min(s.train, LEAST_LEAKAGE),
             fixed=LEAKAGE_FIXED + s.evaluated * leak_each, per_example=leak_each, noun="training examples"),
        Part("dead_relu", "dead-unit count", dead, min(dead, LEAST_DEAD_RELU), fixed=0.05, passes=1,
             noun="training examples"),
    ]
    if images:
        parts.insert(2, Part("example_pictures", "pictures of examples", pictures, pictures,
                             per_example=PICTURE_SECONDS + s.values * PICTURE_PER_VALUE))
        parts.append(Part("robustness", "robustness checks", robust, min(robust, LEAST_ROBUSTNESS), fixed=0.1,
                          per_example=ROBUSTNESS_IMAGE + s.values * ROBUSTNESS_PER_VALUE,
                          passes=ROBUSTNESS_PASSES, noun="evaluation images"))
    else:  # per feature: REPEATS passes of the evaluated rows (and one for the baseline, shared)
        parts.insert(3, Part("importance", "permutation importance", s.values, s.values, fixed=IMPORTANCE_FIXED,
                             per_example=COPY_PER_VALUE * s.evaluated * (s.values + REPEATS),
                             passes=s.evaluated * (REPEATS + 1 / max(1, s.values)), noun="features"))
    return parts


def finish_seconds(s: ReportSizes) -> float:
    """Seconds of the parts every report has (its sections from the logits, its files), and of
    the process's end after it."""
    return FINISH_FIXED + FINISH_PER_EXAMPLE * (s.val + s.evaluated) + EXIT


def report_reserve(s: ReportSizes, budget: float) -> Reserve:
    """What a ``budget`` of seconds holds back for the report of a run on data of sizes ``s``: the
    run's files and the report's fixed parts in full, and each optional part at the share
    ``budget / FULL_BUDGET`` of its full size, at most all of it and at least its smallest sample;
    a part that runs the model more than once an example gets none below its smallest sample.

    >>> small = ReportSizes("table", (13,), 3, train=128, val=14, evaluated=36)
    >>> report_reserve(small, 20.0).examples  # the dead-unit count's 128 rows
    128
    """
    share = min(1.0, max(0.0, budget) / FULL_BUDGET)
    seconds, examples = RUN_FILES + finish_seconds(s), 0.0
    for part in report_parts(s):
        n = min(part.examples, math.ceil(share * part.examples))
        if n < part.least:
            n = part.least if part.passes <= 1 else 0
        seconds += part.seconds(n, 0.0)
        examples += n * part.passes
    return Reserve(seconds, int(math.ceil(examples)))


def forward_seconds(timing: dict, tta: str, tested: int) -> float:
    """Seconds of one forward pass of one example, from a run's timing.json: its test pass
    (``tested`` examples, each seen under the ``tta`` policy's views); FORWARD_FALLBACK when the
    run recorded none.

    >>> forward_seconds({"test_seconds": 2.0}, "flip", 1000)
    0.001
    """
    seconds = timing.get("test_seconds") or 0.0
    if seconds <= 0 or tested <= 0:
        return FORWARD_FALLBACK
    return seconds / (tested * PASSES.get(tta, 1))


def time_box(inputs: ReportInputs, deadline: float | None = None,
             clock: Callable[[], float] = time.perf_counter) -> TimeBox:
    """The optional parts of the report on ``inputs``, under ``deadline`` (a ``clock()`` reading;
    None: every part in full), priced with the forward speed the run measured."""
    indices = inputs.indices
    sizes = ReportSizes(inputs.kind, tuple(inputs.predictor.meta["input_shape"]), len(inputs.classes),
                        len(indices["train"]), len(indices.get("val", ())), len(inputs.eval_y))
    forward = forward_seconds(inputs.timing, inputs.predictor.policy.tta, len(indices.get("test", ())))
    return TimeBox(report_parts(sizes), deadline, clock, forward, finish_seconds(sizes))
