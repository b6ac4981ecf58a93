"""The settings of a search (``neuroclass tune``'s options), as given and as a study folder keeps
them for ``--resume``: ``tune.json`` (the settings), ``space.yaml`` (the space as searched) and
``config.yaml`` (what is not searched)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import optuna
import yaml

from neuroclass.config import Config, load_config, to_dict
from neuroclass.errors import NeuroclassError
from neuroclass.io import write_text_atomic
from neuroclass.tuning.objective import METRICS
from neuroclass.tuning.space import SearchSpace
from neuroclass.tuning.storage import HEARTBEAT_SECONDS

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("median", "halving", "none")
MIN_TRIAL_SECONDS = 5.0  # a trial budget below this trains nothing worth comparing


@dataclass(frozen=True)
class TuneSettings:
    """A search as the command line gives it. ``base``: the config every trial starts from
    (train.time_budget is the whole search's budget, seconds); ``space``: a YAML file (None: the
    family's default space); ``trials``: how many trials end the search (None: the budget or the
    grid); ``cv``: k-fold cross-validation inside each trial; ``storage``: an Optuna storage URL
    (None: SQLite in the study folder); ``study``: the study's name (None: the folder's name);
    ``ensemble``: build an ensemble of the top K trials at the end; ``heartbeat``: seconds between
    a running trial's heartbeats in the storage (a trial silent for 3 heartbeats is failed and run
    again); ``rungs``: successive halving over training time in that many rungs (tuning/rungs.py;
    None: as many as the budget allows when the budget ends the search, else 1); ``report``: write
    the best run's report.html at the end (the study's own report.html is always written)."""

    base: Config
    space: str | None = None
    trials: int | None = None
    sampler: str = "tpe"
    metric: str = "accuracy"
    pruner: str = "median"
    cv: int | None = None
    storage: str | None = None
    study: str | None = None
    ensemble: int | None = None
    heartbeat: int = HEARTBEAT_SECONDS
    rungs: int | None = None
    report: bool = True
    command: str = ""

    def validate(self) -> None:
        """NeuroclassError for a setting outside its choices or range."""
        for name, value, choices in (("--sampler", self.sampler, SAMPLERS), ("--metric", self.metric, tuple(METRICS)),
                                     ("--pruner", self.pruner, PRUNERS)):
            if value not in choices:
                raise NeuroclassError(f"{name} must be one of {', '.join(choices)}. Got {value!r} instead.")
        for name, value, least in (("--trials", self.trials, 1), ("--cv", self.cv, 2), ("--ensemble", self.ensemble, 1),
                                   ("--heartbeat", self.heartbeat, 1), ("--rungs", self.rungs, 1)):
            if value is not None and value < least:
                raise NeuroclassError(f"{name} must be >= {least}. Got {value} instead.")
        if self.trials is None and self.base.train.time_budget is None and self.sampler != "grid":
            raise NeuroclassError("tune needs an end: --time-budget (e.g. 30m), --trials N, or --sampler grid")
        if self.rungs is not None and self.rungs > 1:
            for clash, given in (("--trials", self.trials is not None), ("--sampler grid", self.sampler == "grid"),
                                 ("--storage", self.storage is not None),
                                 ("no --time-budget", self.base.train.time_budget is None)):
                if given:
                    raise NeuroclassError(f"--rungs {self.rungs} with {clash}: rungs share one worker's time budget "
                                          "among growing trials; drop --rungs, or give --time-budget alone")


def write_settings(folder: Path, settings: TuneSettings, space: SearchSpace) -> None:
    """tune.json (the settings a resume reuses), space.yaml (the space as searched) and config.yaml."""
    record = {k: v for k, v in asdict(settings).items() if k != "base"}
    record["space"] = "space.yaml"
    record["space_source"] = space.source
    write_text_atomic(folder / "space.yaml", yaml.safe_dump(space.as_tree(), sort_keys=False))
    write_text_atomic(folder / "tune.json", json.dumps(record, indent=2))
    write_text_atomic(folder / "config.yaml", yaml.safe_dump(to_dict(settings.base), sort_keys=False))


def resumed_end(settings: TuneSettings, study: optuna.Study, given: TuneSettings) -> TuneSettings:
    """A resumed search ends by ``given``'s --trials and --time-budget when given; else by the
    recorded trials and what the recorded budget left (less the seconds of the trials so far).
    ``given``'s --ensemble and --no-report apply to its end."""
    budget = given.base.train.time_budget
    if budget is None and settings.base.train.time_budget is not None:
        spent = sum(t.user_attrs.get("seconds") or 0.0 for t in study.get_trials(deepcopy=False))
        budget = settings.base.train.time_budget - spent
        if budget < MIN_TRIAL_SECONDS:
            raise NeuroclassError(f"the search's time budget is used up ({spent:.0f} s of trials); give "
                                  "--time-budget to continue for longer")
    base = replace(settings.base, train=replace(settings.base.train, time_budget=budget))
    return replace(settings, base=base, trials=given.trials or settings.trials,
                   ensemble=given.ensemble or settings.ensemble, report=settings.report and given.report)


def settings_of(folder: str | Path, given: TuneSettings) -> TuneSettings:
    """The settings a study folder was started with (tune.json, config.yaml), for --resume;
    ``given.command`` is kept. NeuroclassError when ``folder`` is not a study folder."""
    folder = Path(folder)
    try:
        record = json.loads((folder / "tune.json").read_text())
        base = load_config(folder / "config.yaml")
    except (OSError, ValueError) as exc:
        raise NeuroclassError(f"--resume '{folder}': not a study folder of neuroclass tune (no readable "
                              f"tune.json: {exc.__class__.__name__}); give the folder tune printed") from None
    space_file = folder / "space.yaml"
    fields = {k: record[k] for k in ("trials", "sampler", "metric", "pruner", "cv", "storage", "study", "ensemble")}
    heartbeat = record.get("heartbeat", HEARTBEAT_SECONDS)  # study folders from before --heartbeat
    rungs = record.get("rungs")  # the rung plan itself is the study's (tuning/rungs.py)
    return TuneSettings(base=base, space=str(space_file), heartbeat=heartbeat, rungs=rungs,
                        report=record.get("report", True), command=given.command, **fields)
