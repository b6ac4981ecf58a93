"""The Python API that mirrors the CLI: ``train(...)``, ``tune(...)``, ``compare(...)`` and
``load_run(path)``.

``train`` runs the same pipeline as ``neuroclass train`` and leaves the same run folder, report
included (``report=False`` skips it); ``tune`` runs the same search as ``neuroclass tune`` and
leaves the same study folder; ``compare`` the same comparison as ``neuroclass compare``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from neuroclass.config import Config, given_keys, load_config
from neuroclass.inference import EnsemblePredictor, Predictor, load_predictor
from neuroclass.models.registry import AUTO
from neuroclass.training.families import check_family_config
from neuroclass.training.glassbox_settings import glassbox_config
from neuroclass.errors import NeuroclassError
from neuroclass.pipeline import RunResult
from neuroclass.pipeline import resume as resume_pipeline
from neuroclass.pipeline import train as train_pipeline
from neuroclass.training.callbacks import Callback, StopRequest

if TYPE_CHECKING:  # Optuna loads with the first search, explain with the first explanation
    from neuroclass.evaluation.explain import Explanation
    from neuroclass.tuning.compare import CompareResult
    from neuroclass.tuning.search import TuneResult


def build_config(data: str | None = None, model: str | None = None, epochs: int | None = None,
                 time_budget: str | float | None = None, seed: int | None = None,
                 config: str | Path | None = None, overrides: list[str] | None = None,
                 out: str | Path | None = None, label_column: str | None = None,
                 quiet: bool | None = None) -> Config:
    """Defaults < ``config`` file < the named arguments < ``overrides`` ('section.key=value')."""
    values: dict = {}
    cleared: list[str] = []
    if data is not None:
        values.setdefault("data", {})["source"] = str(data)
    if label_column is not None:
        values.setdefault("data", {})["label_column"] = label_column
    if model is not None:
        base = load_config(config) if config else Config()
        values["model"] = {"name": model}
        if base.model.name not in (AUTO, model):  # the file's options belong to its family: start
            cleared = ["model.options={}"]  # from the defaults (before --set; values would merge)
    train: dict = {}
    for key, value in (("epochs", epochs), ("time_budget", time_budget), ("seed", seed), ("quiet", quiet)):
        if value is not None:
            train[key] = value
    if train:
        values["train"] = train
    if out is not None:
        values["out"] = str(out)
    cfg = load_config(config, overrides=[*cleared, *(overrides or [])], values=values)
    check_family_config(cfg.model)  # family, size and options, before any data loads
    # the glass-box network's settings left unset take its preset's; those given are kept
    return glassbox_config(cfg, given_keys(config, [*cleared, *(overrides or [])], values))


def train(data: str | None = None, model: str | None = None, epochs: int | None = None,
          time_budget: str | float | None = None, seed: int | None = None,
          config: str | Path | None = None, overrides: list[str] | None = None,
          out: str | Path | None = None, label_column: str | None = None,
          quiet: bool | None = None, report: bool = True,
          callbacks: list[Callback] | None = None, resume: str | Path | None = None,
          stop: StopRequest | None = None) -> RunResult:
    """Train a classifier like ``neuroclass train`` and return the run (path, metrics, history,
    timing, report path). ``callbacks``: training callbacks (e.g. a progress display).
    ``stop``: a StopRequest that, once requested (e.g. from the caller's signal handler), ends
    training after the current step with a checkpoint and raises pipeline.RunInterrupted.
    ``resume``: continue an interrupted run (its partial folder, or a folder of runs) with its
    recorded config, like ``neuroclass train --resume``; then give no other setting but ``quiet``
    (which replaces the recorded train.quiet), ``report``, ``callbacks`` and ``stop``.

    Raises NeuroclassError (a ValueError) for a bad option or bad data; nothing is written then.

    Example::

        result = neuroclass.train("digits", model="mlp", epochs=10)
        neuroclass.train(resume="runs")  # the newest interrupted run in runs/, continued
        result.metrics["accuracy"]
        # -> 0.97...
    """
    if resume is not None:
        given = [name for name, value in (("data", data), ("model", model), ("epochs", epochs),
                                          ("time_budget", time_budget), ("seed", seed), ("config", config),
                                          ("overrides", overrides), ("out", out), ("label_column", label_column))
                 if value is not None]
        if given:
            raise NeuroclassError(f"resume continues the run with its recorded config; drop {', '.join(given)}")
        return resume_pipeline(resume, callbacks=callbacks or (), report=report, stop=stop, quiet=quiet)
    if data is None:
        raise NeuroclassError("train needs data (a built-in name, folder or file), or resume=PATH")
    cfg = build_config(data, model, epochs, time_budget, seed, config, overrides, out, label_column, quiet)
    return train_pipeline(cfg, callbacks=callbacks or (), command=f"neuroclass.train({data!r})", report=report,
                          stop=stop)


def tune(data: str | None = None, model: str | None = None, time_budget: str | float | None = None,
         trials: int | None = None, sampler: str = "tpe", space: str | Path | None = None,
         metric: str = "accuracy", pruner: str = "median", cv: int | None = None, rungs: int | None = None,
         ensemble: int | None = None, storage: str | None = None, study: str | None = None,
         epochs: int | None = None, seed: int | None = None, config: str | Path | None = None,
         overrides: list[str] | None = None, out: str | Path | None = None, label_column: str | None = None,
         resume: str | Path | None = None, stop: StopRequest | None = None) -> "TuneResult":
    """Search hyperparameters like ``neuroclass tune`` (tuning/search.py: Optuna's samplers and
    pruners, successive halving in ``rungs``) and return the study (folder, best run folder,
    leaderboard rows, report, ensemble). ``time_budget`` is the whole search's (seconds or
    '30m'); ``space``: a YAML file of config keys (None: the family's default space); ``resume``:
    a study folder to continue (then only ``time_budget``, ``trials`` and ``stop`` count: the rest
    is the study's record).

    Raises NeuroclassError (a ValueError) for a bad option, space, data or storage (before any
    trial); tuning.search.SearchInterrupted when ``stop`` is requested (the finished trials stay).

    Example::

        result = neuroclass.tune("digits", model="mlp", time_budget="10m")
        result.best  # the best trial's run folder: load_run(result.best).predict_files([...])
    """
    from neuroclass.tuning.search import tune as tune_search
    from neuroclass.tuning.settings import TuneSettings

    if data is None and resume is None:
        raise NeuroclassError("tune needs data (a built-in name, folder or file), or resume=STUDY_FOLDER")
    cfg = build_config(data or "digits", model, epochs, time_budget, seed, config, overrides, out, label_column, True)
    settings = TuneSettings(cfg, space=None if space is None else str(space), trials=trials, sampler=sampler,
                            metric=metric, pruner=pruner, cv=cv, storage=storage, study=study, ensemble=ensemble,
                            rungs=rungs, command=f"neuroclass.tune({data!r})")
    return tune_search(settings, stop=stop, resume=resume)


def compare(data: str, models: str | list[str], cv: int | None = None, time_budget: str | float | None = None,
            metric: str = "accuracy", seed: int | None = None, config: str | Path | None = None,
            overrides: list[str] | None = None, out: str | Path | None = None, label_column: str | None = None,
            report: bool = True, stop: StopRequest | None = None) -> "CompareResult":
    """Compare model families like ``neuroclass compare``: each entry of ``models`` ("mlp,xgboost,svm+hog",
    or a list of entries; tuning/compare_entries.py) trains on the same split (or, with ``cv``, the
    same K folds), sharing ``time_budget`` (the whole comparison's: seconds or '20m'). Returns the
    comparison (folder, the best entry's folder, leaderboard rows best first by the validation
    ``metric``, report.html); ``report=False``: no report.html in each entry's run folder.

    Raises NeuroclassError (a ValueError) for a bad entry, option or data before anything trains,
    and when every entry failed; RunInterrupted when ``stop`` is requested.

    Example::

        result = neuroclass.compare("digits", "mlp,logreg,knn", cv=5)
        result.rows[0]["entry"], result.rows[0]["val"], result.rows[0]["val_std"]  # the best entry
        load_run(result.best).predict_files(["seven.png"])
    """
    from neuroclass.tuning.compare import CompareSettings
    from neuroclass.tuning.compare import compare as compare_entries
    from neuroclass.tuning.compare_entries import parse_entries

    entries = parse_entries(models)
    cfg = build_config(data, None, None, time_budget, seed, config, overrides, out, label_column, True)
    settings = CompareSettings(cfg, entries, cv=cv, metric=metric, report=report,
                               command=f"neuroclass.compare({data!r}, {models!r})",
                               given=frozenset(given_keys(config, overrides)))
    return compare_entries(settings, stop=stop)


def load_run(path: str | Path, device: str = "auto") -> Predictor | EnsemblePredictor:
    """A finished run folder (or an ensemble folder: an EnsemblePredictor), ready to predict.

    Example::

        load_run("runs/x").predict_files(["a.png"])
    """
    return load_predictor(path, device=device)


def explain(run: str | Path, file: str | Path | None = None, index: int | None = None, label: str | None = None,
            out: str | Path | None = None, attribution: str = "integrated_gradients", page: bool = True,
            device: str = "auto", row: int | None = None) -> "Explanation":
    """One prediction of ``run`` step by step, like ``neuroclass explain``: for ``file`` (an image,
    or data row ``row`` of a table file, counted from 0, default 0; with its true class ``label``,
    if known) or example ``index`` of the run's test split (default 0). Writes the HTML page
    (``out``: a file or folder; default the run folder, explain-<input>.html) unless
    ``page=False``; ``Explanation.page`` is its path. Raises NeuroclassError (a ValueError) for a
    missing run, a classical or ensemble run, an index or row out of range or an unknown label.

    Example::

        found = neuroclass.explain("runs/x", index=3)
        found.output.probabilities, found.update.new_probabilities, found.page
    """
    from neuroclass.evaluation.explain import explain_run, write_explanation

    found = explain_run(run, file, index, label, attribution, device, row)
    if page:
        write_explanation(found, out)  # sets found.page
    return found
