"""The pipeline's steps: prepare (device, data, splits, statistics, the budget's plan) -> build (the
model and its starting weights) -> fit (within the deadline) -> finalize (inference policy, test
metrics, model.json). Every caller trains through them (see the package's docstring)."""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
from sklearn.pipeline import Pipeline

from neuroclass import data as data_mod
from neuroclass.config import Config
from neuroclass.data.builtin import is_builtin
from neuroclass.data.dataset import Dataset
from neuroclass.data.normalization import leave_unscaled, normalization_stats
from neuroclass.data.table_prep import prepare_table
from neuroclass.device import pick_device, run_process_state
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.metrics import classification_metrics
from neuroclass.evaluation.report.costs import ReportSizes, Reserve, report_reserve
from neuroclass.inference import InferencePolicy, choose_policy
from neuroclass.classical.model import ClassicalModel
from neuroclass.models import Classifier, create
from neuroclass.models.registry import resolve_default_model
from neuroclass.runs import model_metadata
from neuroclass.runs.glassbox_module import GlassboxModule
from neuroclass.training.budget import plan_for_budget, reserve_examples, trained_shift
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.training.checkpoint import Checkpoint
from neuroclass.training.checkpoint_writer import CheckpointWriter
from neuroclass.training.embeddings import check_encoding, embedding_inputs
from neuroclass.training.classical_fit import classical_inputs, fit_on_splits
from neuroclass.training.families import (check_family_config, check_features, is_classical, is_glassbox,
                                          recorded_options)
from neuroclass.training.finetune import FineTuning, prepare_fine_tuning, resolve_transfer
from neuroclass.training.glassbox_fit import build_glassbox, fit_glassbox, glassbox_config
from neuroclass.training.resolution import plan_input
from neuroclass.training.state import TrainState
from neuroclass.training.trainer import Trainer

BeforeRename = Callable[[Path], None]  # a checkpoint's temporary folder, complete, before its rename
# What prediction needs to turn raw inputs into model inputs (not where or how data was cached).
# "table": a table's schema and fitted preprocessing (data/schema.py, data/table_prep.py).
MODEL_INPUT_KEYS = ("channels", "size", "decode", "columns", "categorical", "feature_names", "table")


@dataclass
class Prepared:
    """Everything a run knows before it builds a model: the config as the budget resolved it,
    the device, the data and its splits, and the training split's input statistics."""

    cfg: Config
    device: torch.device
    threads: int
    dataset: Dataset
    splits: data_mod.Splits
    mean: torch.Tensor
    std: torch.Tensor
    plan: dict  # what a time budget decided (model size, automatic augmentation)
    start: float  # clock reading at the start of the run, seconds
    deadline: float | None  # clock reading by which the whole run must end
    clock: Callable[[], float] = time.perf_counter
    earlier_seconds: float = 0.0  # seconds of the run's earlier sessions (a resumed run's), for totals
    report_reserve: Reserve = Reserve()  # what the budget holds back for the report (report/costs.py)
    # a table's preprocessing fitted on the training split (data/table_prep.py), which turned the
    # splits' raw rows into model inputs; the run folder saves it (RunFolder.write_preprocess)
    table_prep: Pipeline | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The model's input shape: the splits' (a table's dataset keeps its raw rows)."""
        return self.splits.train.input_shape


@dataclass
class Finished:
    """A trained model's inference policy, test metrics (None without a test split) and record."""

    model: Classifier
    state: TrainState
    policy: InferencePolicy
    policy_record: dict
    meta: dict  # model.json
    metrics: dict | None
    timing: dict
    test_logits: torch.Tensor | None = None  # (N, K) under the policy, before the temperature
    val_logits: torch.Tensor | None = None
    val_metrics: dict | None = None  # the validation split's metrics under the policy (a search selects by them)


@dataclass
class RunResult:
    path: Path
    metrics: dict  # test metrics
    history: list  # per-epoch rows
    timing: dict  # seconds and images/s
    report: Path | None = None  # report.html, when written
    val_metrics: dict | None = None  # validation metrics under the inference policy (None without val)


def process_state(cfg: Config) -> contextlib.AbstractContextManager[int]:
    """The process-wide state of a run (device.run_process_state with the config's seed and
    threads): restored afterwards; the context yields the number of threads in use."""
    return run_process_state(cfg.train.seed, cfg.train.threads)


def prepare(cfg: Config, dataset: Dataset | None = None, require_test: bool = True,
            clock: Callable[[], float] = time.perf_counter, budget: float | None = None,
            plan: dict | None = None, start: float | None = None, report: bool = False) -> Prepared:
    """Device, data (``cfg.data`` loaded unless ``dataset`` is given), splits, statistics, and
    what a time budget affords. A resumed run passes the seconds of its budget left (``budget``,
    default train.time_budget) and the plan its budget made (``plan``: not planned again).
    ``start``: the ``clock()`` reading the budget counts from (default: now); ``report``: the
    budget holds back time for the report. Raises NeuroclassError for a bad config or data, before training."""
    start = clock() if start is None else start
    budget = budget if budget is not None else cfg.train.time_budget
    deadline = start + budget if cfg.train.time_budget else None
    device = pick_device(cfg.train.device)
    source = Path(cfg.data.source).expanduser()
    if dataset is None and not is_builtin(cfg.data.source) and source.exists():
        # an absolute path in the run's config finds its data from any working folder
        cfg = replace(cfg, data=replace(cfg.data, source=str(source.resolve())))
    cfg = resolve_transfer(cfg)  # --from RUN: the run's model; conflicting starting points fail
    check_family_config(cfg.model)  # family, size and options: a typo fails before the data loads
    cfg = glassbox_config(cfg)  # the glass-box network's settings, as config.yaml records them
    photos = None  # a photo folder: its input side, family and augmentation (training/resolution.py)
    if dataset is None and plan is None:
        cfg, photos = plan_input(cfg, device, deadline, clock)
    dataset = dataset if dataset is not None else data_mod.load(cfg.data)
    cfg = replace(cfg, model=resolve_default_model(cfg.model, dataset.kind))  # "auto": cnn or mlp
    check_features(cfg, dataset.kind)
    check_encoding(cfg, dataset.kind)
    splits = data_mod.split(dataset, cfg.data.val_fraction, cfg.data.test_fraction, cfg.train.seed,
                            cfg.data.folds, cfg.data.fold)
    if require_test and splits.test is None:
        raise NeuroclassError(f"{cfg.data.source}: no test split; set data.test_fraction > 0 "
                              "(e.g. --set data.test_fraction=0.2) or provide a test/ folder")
    table_prep, splits, dataset = prepare_table(dataset, splits, cfg.data, cfg.train.seed)
    mean, std = normalization_stats(splits.train.x)
    # a table's 0/1 inputs (missing-value indicators, one-hot categories) are not standardized
    mean, std = leave_unscaled(mean, std, dataset.preprocessing.get("table", {}).get("binary_inputs", []))
    cfg, mean, std = embedding_inputs(cfg, dataset.preprocessing, mean, std)  # data.encoding=embedding
    held = report_reserve(ReportSizes.of(dataset, splits), budget) if report and deadline is not None else Reserve()
    if plan is None:
        cfg, plan = plan_for_budget(cfg, splits, splits.train.input_shape, len(dataset.classes), mean, std,
                                    device, None if deadline is None else deadline - held.seconds, clock,
                                    photos is not None)
        plan["input"] = photos
    return Prepared(cfg, device, torch.get_num_threads(), dataset, splits, mean, std, plan, start,
                    deadline, clock, report_reserve=held, table_prep=table_prep)


def build(prep: Prepared) -> tuple[Classifier, FineTuning]:
    """The configured network with its starting weights (--pretrained / --weights / --from) and
    the fine-tuning plan (head-only epochs, per-layer rates)."""
    ds = prep.dataset
    if is_classical(prep.cfg.model.name):  # fitted in fit(); nothing to load or fine-tune
        features = None if prep.cfg.data.features == "none" else prep.cfg.data.features
        return ClassicalModel(prep.cfg.model.name, features=features), FineTuning()
    if is_glassbox(prep.cfg.model.name):  # the NumPy network, trained by its own loop in fit()
        return build_glassbox(prep.cfg, prep.input_shape, len(ds.classes)), FineTuning()
    model = create(prep.cfg.model, prep.input_shape, len(ds.classes), prep.mean, prep.std)
    return model, prepare_fine_tuning(model, prep.cfg, prep.input_shape, ds.classes)


def fit(prep: Prepared, model: Classifier, tuning: FineTuning, callbacks: list[Callback] | tuple = (),
        checkpoints: Path | None = None, resume: Checkpoint | None = None,
        stop: StopRequest | None = None, before_rename: BeforeRename | None = None) -> TrainState:
    """Train ``model`` on the training split, validating each epoch, within the run's deadline;
    checkpoints into the folder ``checkpoints`` (none when None), continuing ``resume`` if given.
    ``stop``: a request that ends training after the current step (StopReason.INTERRUPTED).
    ``before_rename(tmp)``: called as each checkpoint's files are on disk, before its rename."""
    cfg, splits = prep.cfg, prep.splits
    if isinstance(model, ClassicalModel):  # fitted once, within the deadline; no checkpoints
        return fit_on_splits(model, cfg, splits, len(prep.dataset.classes), prep.deadline, prep.clock,
                             prep.report_reserve.seconds)
    if isinstance(model, GlassboxModule):  # its own loop, within the deadline, with the callbacks; no checkpoints
        return fit_glassbox(model, cfg, splits, prep.deadline, prep.clock, prep.report_reserve.seconds, callbacks, stop)
    # the writer last: it saves what every other callback did in the step or epoch (the stop
    # request's stop, a user callback's state)
    writer = [] if checkpoints is None else [
        CheckpointWriter(checkpoints, 60 * cfg.train.checkpoint_minutes, prep.clock, before_rename=before_rename,
                         share=cfg.train.checkpoint_share)]
    held = prep.report_reserve  # the report's time after training: seconds, and examples at the measured speed
    trainer = Trainer(cfg.train, cfg.optim, cfg.augment, prep.device, deadline=prep.deadline,
                      callbacks=[*tuning.callbacks, *([stop] if stop is not None else []), *callbacks, *writer],
                      reserve_examples=reserve_examples(splits, cfg.train.tta, trained_shift(cfg)) + held.examples,
                      lr_scales=tuning.lr_scales, clock=prep.clock, reserve_seconds=held.seconds,
                      sampler=cfg.data.sampler)
    return trainer.fit(model, splits.train, splits.val, resume=resume)


def finalize(prep: Prepared, model: Classifier, state: TrainState) -> Finished:
    """Choose the inference policy on the validation split, then score the test split with it
    (the probabilities ``predict`` gives), and describe the model for model.json."""
    cfg, splits, ds = prep.cfg, prep.splits, prep.dataset
    val_x, val_y = (splits.val.x, splits.val.y) if splits.val is not None else (None, None)
    test_x = splits.test.x if splits.test is not None else None
    scorer = model
    if isinstance(model, ClassicalModel):  # images as the features fit() cached, not computed again
        scorer, (val_x, test_x) = classical_inputs(model, (val_x, test_x), cfg.data.cache)
        cfg = replace(cfg, train=replace(cfg.train, tta="none"))  # views of feature rows mean nothing
    policy_start = prep.clock()
    policy, record, val_logits = choose_policy(scorer, val_x, val_y, prep.device, cfg.train.tta,
                                               cfg.train.eval_batch_size, cfg.train.channels_last,
                                               flip_trained=cfg.augment.enabled and cfg.augment.flip,
                                               shift=trained_shift(cfg))
    policy_seconds = prep.clock() - policy_start
    metrics, test_seconds, logits = None, 0.0, None
    if splits.test is not None:
        eval_start = prep.clock()
        logits = policy.logits(scorer, test_x, prep.device, cfg.train.eval_batch_size,
                               cfg.train.channels_last)
        test_seconds = prep.clock() - eval_start
        metrics = classification_metrics(splits.test.y.numpy(), policy.probabilities(logits), ds.classes)
    val_metrics = None
    if val_logits is not None and len(val_y):
        val_metrics = classification_metrics(val_y.numpy(), policy.probabilities(val_logits), ds.classes)
    # the glass-box network records the options it trained with, the config's settings included
    options = asdict(model.network.options) if isinstance(model, GlassboxModule) else recorded_options(cfg.model)
    meta = model_metadata(cfg.model, options,
                          prep.input_shape, ds.classes, ds.kind,
                          {k: v for k, v in ds.preprocessing.items() if k in MODEL_INPUT_KEYS},
                          policy.as_dict())
    n_test = len(splits.test) if splits.test is not None else 0
    timing = {"train_seconds": state.train_seconds, "epochs": state.epoch,
              "train_examples_per_second": state.samples_seen / max(1e-9, state.train_seconds),
              "policy_seconds": policy_seconds, "test_seconds": test_seconds,
              "inference_examples_per_second": n_test / test_seconds if test_seconds else None,
              "total_seconds": prep.earlier_seconds + prep.clock() - prep.start,
              "stop_reason": state.stop_reason.value,
              "stop_detail": state.stop_detail, "best_epoch": state.best_epoch, **prep.plan}
    if isinstance(model, ClassicalModel):  # what fitting did: rounds, early stopping, warnings
        timing["classical"] = {k: v for k, v in model.fitted.record.items() if k != "history"}
    return Finished(model, state, policy, record, meta, metrics, timing, logits, val_logits, val_metrics)
