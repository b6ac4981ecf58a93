"""Training into a run folder: ``train`` (a new run), ``resume`` (an interrupted one, from its newest
checkpoint), and ``write_run`` (every file of a finished run, then the rename into place)."""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from neuroclass.config import Config
from neuroclass.errors import NeuroclassError, RunInterrupted, StoppedBeforeCheckpoint
from neuroclass.evaluation.report import FromTraining, try_write_report
from neuroclass.pipeline.steps import BeforeRename, Finished, Prepared, RunResult, build, finalize, fit, prepare, process_state
from neuroclass.runs import RunData, RunFolder, environment_record, run_name
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.training.checkpoint import Checkpoint, CheckpointWriteError, read_checkpoint
from neuroclass.training.resume_record import checkpoint_totals, resume_line, with_resume, with_session
from neuroclass.training.state import StopReason
from neuroclass.training.trainer import TrainingDiverged

log = logging.getLogger("neuroclass.pipeline")  # a resume's first line, at INFO; the CLI prints it


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
    requested (the partial folder is kept for ``resume``; a run without a checkpoint, the
    glass-box network's, is finished first: ``finished``), StoppedBeforeCheckpoint for a
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
        if state.stop_reason is StopReason.INTERRUPTED and run.has_checkpoint():
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
    if state.stop_reason is StopReason.INTERRUPTED:  # nothing to resume from: finished with the weights it has
        raise RunInterrupted(path, state.stop_detail, finished=True)
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
