"""The side photos are decoded at, chosen from the time budget, the folder and the model's speed.

A photo folder (data/survey.py: colour images whose median shorter side is PHOTO_SIDE px or more)
holds far more pixels than a network trained from scratch on a CPU can use: kept at 500x375, a
small CNN trained 10 images/s and needed 9.7 GB. With ``data.image_size`` unset and a time budget,
``choose_side`` times a few real training steps of the model at each side of SIDES (cheapest first,
up to the folder's median shorter side) and keeps the largest side at which the budget, less the
time decoding the folder takes at that side, still buys ``required_examples`` training examples;
timing stops at the first side too slow. Without a budget photos get DEFAULT_SIDE. Every image is
then brought to the side by the one rule ``data.aspect`` records (centre crop or pad).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from neuroclass.config import Config, ModelConfig
from neuroclass.device import use_threads
from neuroclass.data.builtin import is_builtin
from neuroclass.data.idx import is_idx_folder
from neuroclass.data.images import UnreadableImage, read_image
from neuroclass.data.parallel import decode_workers
from neuroclass.data.pixels import DecodeSettings
from neuroclass.data.survey import FolderSurvey, survey_folder
from neuroclass.errors import NeuroclassError
from neuroclass.models import create
from neuroclass.models.registry import PHOTO_KIND, resolve_default_model
from neuroclass.models.sizing import AUTO, DEFAULT, family_of, size_names
from neuroclass.training.finetune import transfer_source
from neuroclass.training.pretrained_advice import pretrained_advice
from neuroclass.training.sizing import epochs_within, probe_speed
from neuroclass.training.trainer import DEFAULT_EPOCHS, resolve_batch_size

log = logging.getLogger(__name__)  # the choice, at INFO; the CLI prints it

SIDES = (32, 48, 64, 96, 128, 160, 192, 224)  # pixels, cheapest first
DEFAULT_SIDE = 64  # without a time budget
# training examples a network trained from scratch on a few hundred photos needs before more
# pixels pay: see benchmarks/photos.py and RESULTS.md
MIN_EXAMPLES = 80_000
# without a budget photos train MIN_EXAMPLES examples, but never more than this many epochs (a
# folder of 13 training photos would otherwise get 6,154)
MAX_EPOCHS = 300
# one thread is chosen over torch's default when it trains this much faster: on an idle machine
# two threads train about 1.5x faster than one, while with another process on the cores threads
# that wait for each other ran 10-150x slower (resnet m, 32 px, batch 16, 2 cores with a test
# run beside it: 14-177 examples/s on 2 threads, 1,710-2,257 on 1)
ONE_THREAD_GAIN = 1.5


@dataclass
class SideChoice:
    """The side chosen and why: ``probes`` [{"side", "examples_per_second", "examples",
    "decode_seconds"}] of the sides timed (examples the budget would buy at that side, seconds
    decoding the folder would take), the examples ``required`` and the seconds spent timing."""

    side: int
    why: str  # "time budget" | "default"
    required: int = 0
    fits: bool = True  # False: even the smallest side timed affords fewer than ``required``
    probes: list = field(default_factory=list)
    probe_seconds: float = 0.0

    def summary(self, survey: FolderSurvey, aspect: str, family: str) -> str:
        """The run's first line about the input size."""
        said = {"crop": "centre-cropped", "pad": "padded", "stretch": "stretched"}.get(aspect, aspect)
        head = (f"input {self.side}x{self.side} px ({survey.describe()}; {said} to square, "
                f"data.aspect={aspect})")
        if self.why != "time budget":
            return (f"{head}: the default side for photos without a time budget; set another with "
                    f"--set data.image_size=N")
        tried = ", ".join(f"{p['side']} px {p['examples_per_second']:,.0f} examples/s" for p in self.probes)
        why = (f"the largest side at which {family} trains >= {self.required:,} examples in the time "
               "budget" if self.fits else f"no side lets {family} train {self.required:,} examples in "
               "the time budget: the smallest")
        return f"{head}: {why} (timed {tried}); fix it with --set data.image_size=N"

    def record(self) -> dict:
        return {"side": self.side, "why": self.why, "required_examples": self.required, "fits": self.fits,
                "probes": self.probes, "probe_seconds": self.probe_seconds}


def required_examples(n_train: int, min_epochs: float) -> int:
    """Training examples a side must afford: MIN_EXAMPLES, and at least ``min_epochs`` epochs.

    >>> required_examples(300, 6), required_examples(50_000, 6)
    (80000, 300000)
    """
    return int(max(MIN_EXAMPLES, min_epochs * n_train))


def candidate_sides(survey: FolderSurvey) -> list[int]:
    """SIDES up to the folder's median shorter side (at least the smallest)."""
    return [s for s in SIDES if s <= survey.short_side] or [SIDES[0]]


def decode_cost(sample: list[Path], channels: int, side: int, decode: DecodeSettings,
                workers: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per image of decoding ``sample`` files to ``side`` px, spread over ``workers``."""
    start, done = clock(), 0
    for path in sample:
        try:
            read_image(path, channels, (side, side), decode)
            done += 1
        except UnreadableImage:
            continue
    return (clock() - start) / max(1, done) / max(1, workers)


def probed_config(cfg: ModelConfig) -> ModelConfig:
    """The model timed at each side: the configured size, or under ``model.size=auto`` the middle
    of the family's sizes, so that the side is chosen for a mid-sized network and the size then
    chosen at that side (training/budget.py) can move either way."""
    family = family_of(cfg)
    if cfg.size == AUTO:
        names = size_names(family)
        return replace(cfg, size=names[len(names) // 2] if names else DEFAULT)
    return cfg


def choose_side(survey: FolderSurvey, required: int, seconds: float, splits: tuple[int, int, int],
                speed_at: Callable[[int], float], decode_seconds_at: Callable[[int], float],
                clock: Callable[[], float] = time.perf_counter) -> SideChoice:
    """The largest candidate side at which the model trains ``required`` examples within
    ``seconds`` less the time decoding the folder takes; the smallest when none does.

    ``speed_at(side)``: training examples/s at that side (``measured_speed``);
    ``decode_seconds_at(side)``: seconds to decode the whole folder at that side; ``splits``:
    (train, val, test) examples the run will have; ``clock``: seconds, whose readings while timing
    count against ``seconds``.

    >>> s = FolderSurvey(400, {"train": 400}, 2, 3, (375, 500), (375, 500), 9, 9)
    >>> choose_side(s, 80_000, 180, (280, 40, 80), lambda side: 4e6 / side**2, lambda side: 2.0).side
    64
    """
    start = clock()
    n_train, n_val, n_test = splits
    choice = SideChoice(candidate_sides(survey)[0], "time budget", required)
    for side in candidate_sides(survey):
        try:
            speed = speed_at(side)
        except NeuroclassError:  # a side the model refuses (a torchvision net's smallest input)
            continue
        decode_seconds = decode_seconds_at(side)
        left = seconds - (clock() - start) - decode_seconds
        examples = epochs_within(left, speed, n_train, n_val, n_test) * n_train
        choice.probes.append({"side": side, "examples_per_second": speed, "examples": round(examples),
                              "decode_seconds": decode_seconds})
        fits = examples >= required
        if fits or len(choice.probes) == 1:  # the smallest side stays when none fits
            choice.side, choice.fits = side, fits
        if not fits:
            break
    choice.probe_seconds = clock() - start
    return choice


def measured_speed(cfg: ModelConfig, classes: int, channels: int, batch_size: int, device: torch.device,
                   channels_last: bool, clock: Callable[[], float] = time.perf_counter) -> Callable[[int], float]:
    """``speed_at(side)``: training examples/s of the model (``probed_config``) on ``side`` px
    inputs, from a few real training steps on ``device`` timed by ``clock`` (seconds;
    training/sizing.py ``probe_speed``)."""
    probed = probed_config(cfg)

    def speed_at(side: int) -> float:
        shape = (channels, side, side)
        build = lambda m: create(m, shape, classes, torch.zeros(1, channels, 1, 1), torch.ones(1, channels, 1, 1))  # noqa: E731
        return probe_speed(probed, build, shape, batch_size, device, channels_last, clock)
    return speed_at


def measured_decoding(survey: FolderSurvey, decode: DecodeSettings, workers: int,
                      clock: Callable[[], float] = time.perf_counter) -> Callable[[int], float]:
    """``decode_seconds_at(side)``: seconds to decode the folder's ``survey.files`` images at
    ``side`` px on ``workers`` threads, from decoding a few of its files timed by ``clock``
    (seconds; ``decode_cost``)."""
    return lambda side: survey.files * decode_cost(survey.sample[::4], survey.channels, side, decode, workers,
                                                   clock)


def image_folder(source: str) -> Path | None:
    """The folder of class folders ``source`` names, or None (a built-in name, IDX files, a file)."""
    if is_builtin(source):
        return None
    path = Path(source).expanduser()
    return path if path.is_dir() and not is_idx_folder(path) else None


def plan_input(cfg: Config, device: torch.device, deadline: float | None,
               clock: Callable[[], float] = time.perf_counter) -> tuple[Config, dict | None]:
    """For a folder of photos (``FolderSurvey.photo_like``): the config with the photo model family
    (``model.name=auto``), ``data.image_size`` chosen (unless set: by the time budget, from
    ``deadline``, a reading of ``clock``; else DEFAULT_SIDE) and, without a time budget, an epoch
    count or a starting point (--pretrained, --weights, --from), enough epochs for MIN_EXAMPLES
    examples; and the record of the choice. Other data: ``(cfg, None)``. The choice, and the
    advice to start from pretrained weights where it would help, are logged at INFO (the run's
    first lines). Raises NeuroclassError for a folder that cannot be listed, or a model the
    config names wrongly."""
    folder = image_folder(cfg.data.source)
    survey = survey_folder(folder, cfg.data.max_pixels) if folder is not None else None
    if survey is None or not survey.photo_like:
        return cfg, None
    cfg = replace(cfg, model=resolve_default_model(cfg.model, PHOTO_KIND))
    splits = survey.split_sizes(cfg.data.val_fraction, cfg.data.test_fraction)
    if cfg.data.limit:  # data.limit keeps the first N of each shipped split
        splits = tuple(min(n, cfg.data.limit) for n in splits)
    channels = cfg.data.channels or survey.channels
    record = {"survey": survey.record(), "photos": True}
    if deadline is not None:
        cfg, record["threads"] = _threads_for_busy_cores(cfg, survey, splits, channels, device)
    if cfg.data.image_size is None:
        choice = _side_choice(cfg, survey, splits, channels, device, deadline, clock)
        log.info("%s", choice.summary(survey, cfg.data.aspect, cfg.model.name))
        record["side"] = choice.record()
        cfg = replace(cfg, data=replace(cfg.data, image_size=choice.side))
    advice = pretrained_advice(
        source=cfg.data.source, input_shape=(channels, cfg.data.image_size, cfg.data.image_size),
        native_shape=(channels, *survey.median_size), train_images=splits[0], classes=survey.classes,
        model=cfg.model.name, starting_point=bool(transfer_source(cfg)), time_budget=cfg.train.time_budget,
        out=None if cfg.out == Config.out else cfg.out, accelerator=device.type != "cpu")
    if advice is not None:
        log.info("%s", advice.text)
        record["pretrained_advice"] = advice.command
    if deadline is None and cfg.train.epochs is None and not transfer_source(cfg):
        epochs = min(MAX_EPOCHS, max(DEFAULT_EPOCHS, math.ceil(MIN_EXAMPLES / max(1, splits[0]))))
        log.info("%d epochs (%s examples over ~%d training images; without a time budget photos "
                 "train for %s examples, at most %d epochs; set --epochs or --time-budget)", epochs,
                 f"{epochs * splits[0]:,}", splits[0], f"{MIN_EXAMPLES:,}", MAX_EPOCHS)
        cfg = replace(cfg, train=replace(cfg.train, epochs=epochs))
        record["epochs"] = epochs
    return cfg, record


def _side_choice(cfg: Config, survey: FolderSurvey, splits: tuple[int, int, int], channels: int,
                 device: torch.device, deadline: float | None, clock: Callable[[], float]) -> SideChoice:
    """DEFAULT_SIDE without a budget; else ``choose_side``, its probes timed by ``clock``, for the
    examples the run needs: its ``--epochs`` where given, the family's minimum epochs from a
    starting point (fine-tuning needs fewer), else ``required_examples``."""
    if deadline is None:
        return SideChoice(DEFAULT_SIDE, "default")
    n_train = splits[0]
    if cfg.train.epochs:
        required = cfg.train.epochs * n_train
    elif transfer_source(cfg):
        required = math.ceil(family_of(cfg.model).min_epochs * n_train)
    else:
        required = required_examples(n_train, family_of(cfg.model).min_epochs)
    speed_at = measured_speed(cfg.model, survey.classes, channels, resolve_batch_size(cfg.train.batch_size, n_train),
                              device, cfg.train.channels_last, clock)
    decoding = measured_decoding(survey, DecodeSettings.from_config(cfg.data), decode_workers(None, survey.files),
                                 clock)
    return choose_side(survey, required, deadline - clock(), splits, speed_at, decoding, clock)


def _threads_for_busy_cores(cfg: Config, survey: FolderSurvey, splits: tuple[int, int, int], channels: int,
                            device: torch.device) -> tuple[Config, dict | None]:
    """With ``train.threads`` unset on a CPU of several threads: the config with one thread when one
    trains ONE_THREAD_GAIN times faster than torch's default count (timed at DEFAULT_SIDE), which
    happens when another process keeps the cores busy; the thread count is set for the rest of the
    run (``pipeline.process_state`` puts it back afterwards). Returns the timings, or None when
    nothing was timed."""
    many = torch.get_num_threads()
    if cfg.train.threads is not None or device.type != "cpu" or many < 2:
        return cfg, None
    speed_at = measured_speed(cfg.model, survey.classes, channels, resolve_batch_size(cfg.train.batch_size, splits[0]),
                              device, cfg.train.channels_last)
    speed_many = speed_at(DEFAULT_SIDE)
    with use_threads(1):
        speed_one = speed_at(DEFAULT_SIDE)
    record = {"threads": many, "examples_per_second": speed_many, "one_thread_examples_per_second": speed_one}
    if speed_one < ONE_THREAD_GAIN * speed_many:
        return cfg, record
    log.info("1 thread: it trained %s examples/s against %s on %d threads (another process is using "
             "the cores; choose with --set train.threads=N)", f"{speed_one:,.0f}", f"{speed_many:,.0f}", many)
    torch.set_num_threads(1)
    return replace(cfg, train=replace(cfg.train, threads=1)), record
