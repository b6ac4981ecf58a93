"""The one training pipeline: prepare -> build -> fit -> finalize, then the run folder.

Every caller trains through these steps: the CLI and ``neuroclass.train`` (``train``, which writes
a run folder and its report; ``resume``, which continues an interrupted one), the scikit-learn
estimator (``estimator.train_in_memory``, no folder) and ``neuroclass bench`` (``prepare`` and ``build``).
Process-wide state that a run changes (torch's thread count, its global random generator) is
restored when the run ends.

A run folder's training writes checkpoints (training/checkpoint.py) into its hidden partial folder,
which holds the run's config.yaml from the start. A stop request (training.callbacks.StopRequest,
set by the CLI's signal handlers) ends training after the current step with a checkpoint and raises
RunInterrupted; ``resume`` then continues from the newest checkpoint with the recorded config and
the time budget that was left. A run that fails after its first checkpoint keeps its partial folder
for a resume, unless training diverged.

Example::

    result = train(load_config(overrides=["data.source=digits", "model.name=mlp", "train.epochs=3"]))
    result.metrics["accuracy"]
    # -> 0.96...
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
from sklearn.pipeline import Pipeline

from neuroclass import data as data_mod
from neuroclass.config import Config
from neuroclass.data.builtin import is_builtin
from neuroclass.data.dataset import Dataset
from neuroclass.data.normalization import normalization_stats
from neuroclass.data.table_prep import prepare_table
from neuroclass.device import pick_device, run_process_state
from neuroclass.errors import NeuroclassError, RunInterrupted, StoppedBeforeCheckpoint  # the stops, re-exported
from neuroclass.evaluation.metrics import classification_metrics
from neuroclass.evaluation.report import FromTraining, try_write_report
from neuroclass.evaluation.report.costs import ReportSizes, Reserve, report_reserve
from neuroclass.inference import InferencePolicy, choose_policy
from neuroclass.classical.model import ClassicalModel
from neuroclass.models import Classifier, create
from neuroclass.models.registry import resolve_default_model
from neuroclass.runs import RunData, RunFolder, environment_record, model_metadata, run_name
from neuroclass.training.budget import plan_for_budget, reserve_examples, trained_shift
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.training.checkpoint import Checkpoint, CheckpointWriteError, read_checkpoint
from neuroclass.training.checkpoint_writer import CheckpointWriter
from neuroclass.training.classical_fit import classical_inputs, fit_on_splits
from neuroclass.training.families import check_family_config, check_features, is_classical, recorded_options
from neuroclass.training.finetune import FineTuning, prepare_fine_tuning, resolve_transfer
from neuroclass.training.resolution import plan_input
from neuroclass.training.resume_record import checkpoint_totals, resume_line, with_resume, with_session
from neuroclass.training.state import StopReason, TrainState
from neuroclass.training.trainer import Trainer, TrainingDiverged

log = logging.getLogger(__name__)  # a resume's first line, at INFO; the CLI prints it
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
    photos = None  # a photo folder: its input side, family and augmentation (training/resolution.py)
    if dataset is None and plan is None:
        cfg, photos = plan_input(cfg, device, deadline, clock)
    dataset = dataset if dataset is not None else data_mod.load(cfg.data)
    cfg = replace(cfg, model=resolve_default_model(cfg.model, dataset.kind))  # "auto": cnn or mlp
    check_features(cfg, dataset.kind)
    splits = data_mod.split(dataset, cfg.data.val_fraction, cfg.data.test_fraction, cfg.train.seed,
                            cfg.data.folds, cfg.data.fold)
    if require_test and splits.test is None:
        raise NeuroclassError(f"{cfg.data.source}: no test split; set data.test_fraction > 0 "
                              "(e.g. --set data.test_fraction=0.2) or provide a test/ folder")
    table_prep, splits, dataset = prepare_table(dataset, splits, cfg.data, cfg.train.seed)
    mean, std = normalization_stats(splits.train.x)
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
    meta = model_metadata(cfg.model, recorded_options(cfg.model),
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


def write_run(run: RunFolder, prep: Prepared, done: Finished, command: str = "",
              data_hash: str | None = None) -> Path:
    """Fill the partial ``run`` folder with every file of the finished run and rename it into place
    (``data_hash``: the data's content hash, when computed already)."""
    run.write_model(done.model.cpu(), done.meta)
    if prep.table_prep is not None:
        run.write_preprocess(prep.table_prep)
    run.write_config(prep.cfg)
    run.write_json("metrics.json", done.metrics or {})
    run.write_history(done.state.history)
    run.write_json("timing.json", done.timing)
    run.write_json("environment.json", environment_record(prep.device, prep.threads, prep.cfg.train.seed,
                                                          data_hash or prep.dataset.content_hash(), command))
    run.write_split(prep.splits.indices, prep.splits.method)
    run.write_data_issues(prep.dataset.issues)
    return run.commit()


def train(cfg: Config, callbacks: list[Callback] | tuple = (), command: str = "",
          report: bool = True, stop: StopRequest | None = None,
          before_rename: BeforeRename | None = None, clock: Callable[[], float] = time.perf_counter,
          started: float | None = None, out: str | Path | None = None, name: str | None = None) -> RunResult:
    """Train ``cfg`` end to end: the run folder with its test metrics and, unless ``report`` is
    False, report.html (a failing report is one warning; the run folder stays), report included in the budget.

    The hidden run folder is made before training, so that an unwritable ``out`` fails at once;
    it holds config.yaml and the checkpoints while training runs. Raises NeuroclassError for bad
    config, data or ``out`` (nothing is left behind then), RunInterrupted when ``stop`` is
    requested (the partial folder is kept for ``resume``), StoppedBeforeCheckpoint for a
    KeyboardInterrupt before the first checkpoint (nothing is left behind). ``before_rename(tmp)``: called as each
    checkpoint's files are on disk, before it is renamed into place (a test's moment to act);
    ``clock``: seconds, for the time budget (a test's fake clock), counted from ``started`` (default: now).
    ``out`` and ``name``: the folder the run folder goes in (default: the config's ``out``, which
    config.yaml records either way) and its name (default: ``<data>-<model>-<timestamp>``)."""
    with process_state(cfg):
        try:
            prep = prepare(cfg, clock=clock, start=started, report=report)
        except KeyboardInterrupt:
            raise StoppedBeforeCheckpoint("stopped at once before training started") from None
        data_hash = prep.dataset.content_hash()  # before the folder: nothing to clean up if cut short
        run = RunFolder.create(prep.cfg.out if out is None else out,
                               name or run_name(prep.cfg.data.source, prep.cfg.model.name))
        record = {"command": command, "plan": prep.plan, "resumed": [], "session_seconds": [],
                  "data_hash": data_hash}
        return _train_in(run, prep, None, record, _Extras(callbacks, report, stop, before_rename))


def resume(path: str | Path, callbacks: list[Callback] | tuple = (), report: bool = True,
           stop: StopRequest | None = None, quiet: bool | None = None,
           progress: Callable[[], Callback] | None = None,
           before_rename: BeforeRename | None = None, clock: Callable[[], float] = time.perf_counter,
           started: float | None = None) -> RunResult:
    """Continue the interrupted run at ``path`` (its partial folder, or a folder of runs: its newest
    interrupted one) from its newest checkpoint, with the run's own config and the time budget
    that was left; without a checkpoint, train it again from the start. The run records each
    resume (timing.json "resumed": [{"at", "epoch", "step", "seconds_before", "checkpoint_seconds"}]:
    the epoch in progress, 1-based, and the optimizer steps done, as the interrupt's line and the
    checkpoint's name give them, the seconds of the sessions before, and those of writing the
    checkpoint it resumes from), and its total_seconds, checkpoints_written and
    checkpoint_write_seconds sum every session's. Unless quiet, the first line logged (INFO, logger "neuroclass") says where it resumes.
    ``quiet`` replaces the recorded train.quiet (None: keep it); ``progress()`` makes a progress
    display, added to ``callbacks`` unless the run is quiet. ``before_rename``, ``clock``, ``started``: as for
    ``train``. Raises what ``train`` raises, and NeuroclassError when there is no run to continue."""
    run = RunFolder.reopen(path)
    try:
        cfg, record = run.config(), run.resume_record()
        checkpoint = read_checkpoint(run.checkpoint_dir)
    except BaseException:
        run.release()
        raise
    if quiet is not None:
        cfg = replace(cfg, train=replace(cfg.train, quiet=quiet))
    if progress is not None and not cfg.train.quiet:
        callbacks = [*callbacks, progress()]
    record = with_resume(record, checkpoint)
    budget = checkpoint.budget_left if checkpoint else None
    left = (budget if budget is not None else cfg.train.time_budget) if cfg.train.time_budget else None
    with process_state(cfg):
        try:
            prep = prepare(cfg, clock=clock, budget=budget, plan=record["plan"], start=started, report=report)
            prep.earlier_seconds = record["resumed"][-1]["seconds_before"]
            record["data_hash"] = _check_same_data(run, prep, record.get("data_hash"))
        except BaseException:
            run.release()
            raise
        if not cfg.train.quiet:  # the resume's first line, once its data is known to be the same
            log.info("%s", resume_line(run.path, record, left))
        return _train_in(run, prep, checkpoint, record, _Extras(callbacks, report, stop, before_rename))


def _check_same_data(run: RunFolder, prep: Prepared, recorded: str | None) -> str:
    """The content hash of the data a resumed run loads; NeuroclassError when it differs from what
    the run started with (its split and its checkpoint's epoch order would then pick other examples)."""
    current = prep.dataset.content_hash()
    if recorded and recorded != current:
        raise NeuroclassError(f"{prep.cfg.data.source}: the data changed since run '{run.path}' started "
                              f"(content hash {recorded[:16]} then, {current[:16]} now), so its checkpoint "
                              "no longer applies; put the data back as it was, or train a new run")
    return current


@dataclass
class _Extras:
    """What the caller adds to a run folder's training: callbacks, the report, a stop request and
    a checkpoint hook."""

    callbacks: list[Callback] | tuple
    report: bool
    stop: StopRequest | None
    before_rename: BeforeRename | None


def _train_in(run: RunFolder, prep: Prepared, checkpoint: Checkpoint | None, record: dict,
              extras: _Extras) -> RunResult:
    """Train into the partial ``run`` folder (from ``checkpoint`` if given), finish and commit it,
    then the report. ``record``: checkpoint/resume.json's command, plan, resumes and data hash."""
    try:
        _write_start(run, prep.cfg, record)
        model, tuning = build(prep)
        state = fit(prep, model, tuning, extras.callbacks, run.checkpoint_dir, checkpoint, extras.stop,
                    extras.before_rename)
        if state.stop_reason is StopReason.INTERRUPTED:
            with contextlib.suppress(OSError):  # else the resume estimates it from the checkpoint
                run.write_resume_record(with_session(record, prep.clock() - prep.start,
                                                     state.checkpoint_write_seconds))
            raise RunInterrupted(run.path, state.stop_detail)
        done = finalize(prep, model, state)
        done.timing.update(checkpoint_totals(state.checkpoints_written, state.checkpoint_write_seconds, record))
        done.timing["resumed"] = record["resumed"]
        path = write_run(run, prep, done, record["command"], record["data_hash"])
    except BaseException as exc:
        committed = run.final is None  # the rename into place happened: a finished run
        _keep_or_discard(run, exc)
        if isinstance(exc, KeyboardInterrupt) and (committed or run.has_checkpoint()):
            raise RunInterrupted(run.path, "stopped at once", finished=committed) from None
        if isinstance(exc, KeyboardInterrupt):
            raise StoppedBeforeCheckpoint("stopped at once before the first checkpoint") from None
        raise
    html = None
    if extras.report:  # with the run's threads, like the rest of the run; by the budget's deadline
        known = FromTraining(RunData(prep.dataset, prep.splits.indices, prep.cfg.data.source), done.test_logits,
                             done.val_logits)
        try:
            html = try_write_report(path, deadline=prep.deadline, clock=prep.clock, known=known)
        except KeyboardInterrupt:
            raise RunInterrupted(path, "stopped at once while writing the report", finished=True) from None
    return RunResult(path, done.metrics, state.history, done.timing, html, done.val_metrics)


def _write_start(run: RunFolder, cfg: Config, record: dict) -> None:
    """config.yaml, on disk from the start (a resume trains with it), and checkpoint/resume.json.
    Raises NeuroclassError naming the folder when it cannot be written."""
    try:
        run.write_config(cfg)
        run.write_resume_record(record)
    except OSError as exc:
        raise NeuroclassError(f"{run.path}: cannot write the run's files ({exc.strerror or exc}); free "
                              "disk space or pass an --out folder you can write to") from None


def _keep_or_discard(run: RunFolder, exc: BaseException) -> None:
    """After a failure: keep the partial folder where a resume can continue it (a checkpoint is
    there, or writing one failed: the fix is space or permissions), else remove it."""
    resumable = run.has_checkpoint() or isinstance(exc, CheckpointWriteError)
    if resumable and not isinstance(exc, TrainingDiverged):
        run.release()
    else:
        run.discard()
