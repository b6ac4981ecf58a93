"""What each part of the report costs on a run's data, and the time a budget holds back for it.

The cost models are measured (2 shared CPU cores, a training process's report): seconds of each
part's own work per example or per pixel value, plus forward passes of the model, whose seconds the
run measures itself (its validation passes while it trains; at the report, ``measure_forward``
times the model apart from the overhead of each call). The report of a budgeted run reuses the
logits that training computed (inputs.FromTraining), so it needs no pass of its own beyond its
optional parts and that short measurement.

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

import torch

from neuroclass.data.dataset import Dataset
from neuroclass.data.split import Splits
from neuroclass.evaluation.activations import BATCH as DEAD_RELU_BATCH
from neuroclass.evaluation.report.collect import MAX_SAMPLE_CLASSES, MISTAKES, SAMPLES_PER_CLASS
from neuroclass.evaluation.report.diagnostics import DEAD_RELU_EXAMPLES, MAX_PAIRS, MISLABELLED, ROBUSTNESS_EXAMPLES
from neuroclass.evaluation.report.importance import COPY_PER_VALUE, REPEATS
from neuroclass.evaluation.report.inputs import ReportInputs
from neuroclass.evaluation.report.timebox import Part, TimeBox
from neuroclass.evaluation.robustness import BATCH as ROBUSTNESS_BATCH, CORRUPTIONS
from neuroclass.inference import predict_logits
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
PREDICT_BATCH = 256  # rows per call of the model in permutation importance (the Predictor's batches)
# The model's forward cost timed at the report (measure_forward): a call of one example and one of
# up to PROBE_ROWS, each PROBE_TIMES times after a warm-up call, the larger sized to take about
# PROBE_SECONDS in all at the run's recorded speed (an overestimate: forward_seconds).
PROBE_ROWS, PROBE_TIMES, PROBE_SECONDS = 64, 5, 0.05


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
class ForwardCost:
    """Seconds of the model's forward passes: ``example`` for each example (one view) and ``call``
    for each call whatever its size (Python, dispatch, moving the batch, joining the outputs). On a
    tiny evaluation set the call is most of the cost."""

    example: float
    call: float = 0.0


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
             noun="training examples", calls=1, calls_per_example=1 / DEAD_RELU_BATCH),
    ]
    if images:
        parts.insert(2, Part("example_pictures", "pictures of examples", pictures, pictures,
                             per_example=PICTURE_SECONDS + s.values * PICTURE_PER_VALUE))
        parts.append(Part("robustness", "robustness checks", robust, min(robust, LEAST_ROBUSTNESS), fixed=0.1,
                          per_example=ROBUSTNESS_IMAGE + s.values * ROBUSTNESS_PER_VALUE,
                          passes=ROBUSTNESS_PASSES, noun="evaluation images", calls=ROBUSTNESS_PASSES,
                          calls_per_example=ROBUSTNESS_PASSES / ROBUSTNESS_BATCH))
    else:  # per feature: REPEATS passes of the evaluated rows (and one for the baseline, shared)
        shuffles = REPEATS + 1 / max(1, s.values)
        parts.insert(3, Part("importance", "permutation importance", s.values, s.values, fixed=IMPORTANCE_FIXED,
                             per_example=COPY_PER_VALUE * s.evaluated * (s.values + REPEATS),
                             passes=s.evaluated * shuffles, noun="features",
                             calls_per_example=math.ceil(s.evaluated / PREDICT_BATCH) * shuffles))
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


def measure_forward(forward: Callable[[torch.Tensor], object], x: torch.Tensor,
                    clock: Callable[[], float] = time.perf_counter, rows: int = PROBE_ROWS) -> ForwardCost | None:
    """The cost of ``forward`` (the model on a batch of examples) timed by ``clock`` (seconds) on
    the first example of ``x`` (N, ...) and on its first ``rows`` (at most N), after one call on
    the first example that is not counted: a first call pays one-off costs (allocations, kernel
    choice) that no later call does. Each size is timed PROBE_TIMES times and the least kept
    (the others carry other processes' load); the cost per example is the slope between the two
    sizes, the cost per call what is left of the one-example call. None when ``x`` has fewer than
    two examples or the clock did not move (too coarse for calls this short): nothing measured.

    >>> from itertools import count
    >>> ticks = count()
    >>> measure_forward(lambda batch: None, torch.zeros(8, 3), clock=lambda: 0.5 * next(ticks))
    ForwardCost(example=0.0, call=0.5)
    """
    rows = min(rows, len(x))
    if rows < 2:
        return None
    forward(x[:1])  # warm-up, not counted
    one, many = _least_seconds(forward, x[:1], clock), _least_seconds(forward, x[:rows], clock)
    if many <= 0:
        return None
    example = max(0.0, (many - one) / (rows - 1))
    return ForwardCost(example, max(0.0, one - example))


def _least_seconds(forward: Callable[[torch.Tensor], object], x: torch.Tensor, clock: Callable[[], float]) -> float:
    seconds = []
    for _ in range(PROBE_TIMES):
        start = clock()
        forward(x)
        seconds.append(clock() - start)
    return min(seconds)


def probe_rows(recorded: float) -> int:
    """Rows of ``measure_forward``'s larger call: what PROBE_TIMES calls take in PROBE_SECONDS at
    ``recorded`` seconds an example, from 2 to PROBE_ROWS.

    >>> probe_rows(1e-5), probe_rows(2e-3), probe_rows(0.5)
    (64, 5, 2)
    """
    return max(2, min(PROBE_ROWS, math.floor(PROBE_SECONDS / (PROBE_TIMES * recorded)))) if recorded > 0 else PROBE_ROWS


def time_box(inputs: ReportInputs, deadline: float | None = None,
             clock: Callable[[], float] = time.perf_counter) -> TimeBox:
    """The optional parts of the report on ``inputs``, under ``deadline`` (a ``clock()`` reading;
    None: every part in full), priced with the model's forward cost timed now by ``clock`` on the
    evaluated examples (``measure_forward``, the bare model as the robustness curves run it: per
    call and per example), or, where that measures nothing, the run's test pass
    (``forward_seconds``: per example, its call's overhead and first-call costs included, which
    overprice a small evaluation set many times)."""
    indices = inputs.indices
    sizes = ReportSizes(inputs.kind, tuple(inputs.predictor.meta["input_shape"]), len(inputs.classes),
                        len(indices["train"]), len(indices.get("val", ())), len(inputs.eval_y))
    recorded = forward_seconds(inputs.timing, inputs.predictor.policy.tta, len(indices.get("test", ())))
    p = inputs.predictor
    cost = measure_forward(lambda x: predict_logits(p.model, x, p.device, p.batch_size), inputs.eval_x, clock,
                           probe_rows(recorded)) or ForwardCost(recorded)
    return TimeBox(report_parts(sizes), deadline, clock, cost.example, finish_seconds(sizes), call=cost.call)
