"""The search's storage on real databases: the SQLite default in the study folder, one-line errors
for unreachable PostgreSQL URLs, two worker processes sharing a study on a real PostgreSQL server,
and a worker killed mid-trial whose trial is failed by the other worker and run again (marked
slow; the workers are tests/integration/tuning_worker.py, whose trials sleep instead of training)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState
from postgres import free_port

import neuroclass
from neuroclass.errors import NeuroclassError
from neuroclass.tuning.storage import STUDY_FILE, check_study_space, open_storage, stored_space

# timeout: a hang guard (pytest-timeout), not a measurement
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")]

WORKER = Path(__file__).with_name("tuning_worker.py")
JOBS = 20
HEARTBEAT, GRACE = 1, 3  # seconds: a dead worker's trial is failed about 3 s after its last heartbeat
WAIT_SECONDS = 90  # the longest a test waits for a worker or a state before failing


def queue_jobs(url: str, folder: Path, name: str) -> optuna.Study:
    """A new study in ``url`` with JOBS trials waiting, each with user attribute ``job`` and ``x``."""
    storage = open_storage(url, folder, heartbeat_seconds=HEARTBEAT, grace_seconds=GRACE)
    study = optuna.create_study(study_name=name, storage=storage)
    for job in range(JOBS):
        study.enqueue_trial({"x": job}, user_attrs={"job": job})
    return study


def start_worker(url: str, name: str, folder: Path, *options: str) -> subprocess.Popen:
    """Start tuning_worker.py, importing the same neuroclass as the tests; output to a log."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(neuroclass.__file__).parents[1]),
                                         env.get("PYTHONPATH", "")])
    log = open(folder / f"worker-{len(list(folder.glob('worker-*')))}.log", "w")  # noqa: SIM115
    with log:
        return subprocess.Popen([sys.executable, str(WORKER), url, name, "--heartbeat",
                                 str(HEARTBEAT), "--grace", str(GRACE), *options],
                                cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)


def finish(worker: subprocess.Popen, folder: Path) -> int:
    """The worker's exit code once it ends; its logs in the failure message if it does not."""
    try:
        return worker.wait(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        logs = "\n".join(p.read_text() for p in sorted(folder.glob("worker-*.log")))
        pytest.fail(f"worker {worker.pid} did not finish; logs:\n{logs}")


def wait_for(study: optuna.Study, found, what: str) -> optuna.trial.FrozenTrial:
    """The first trial of ``study`` for which ``found(trial)`` holds, polling the storage."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        match = next((t for t in study.get_trials(deepcopy=False) if found(t)), None)
        if match is not None:
            return match
        time.sleep(0.05)
    pytest.fail(f"no trial {what} within {WAIT_SECONDS} s")


def check_jobs_done_once(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Every job COMPLETE exactly once, nothing left waiting or running; the COMPLETE trials."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["job"] for t in complete) == list(range(JOBS))
    assert all(t.params["x"] == t.user_attrs["job"] for t in complete)
    assert not [t for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]
    # the only other trials: those a worker got when no job was waiting, pruned at once
    others = [t for t in trials if "job" not in t.user_attrs]
    assert all(t.state == TrialState.PRUNED for t in others)
    return complete


def test_sqlite_default_in_the_study_folder(tmp_path):
    folder = tmp_path / "study"
    study = optuna.create_study(study_name="s", storage=open_storage(None, folder))
    check_study_space(study, {"x": [0, 10]})
    study.optimize(lambda trial: trial.suggest_float("x", 0, 10) ** 2, n_trials=3)
    assert (folder / STUDY_FILE).is_file()

    again = optuna.load_study(study_name="s", storage=open_storage(None, folder))
    assert [t.state for t in again.trials] == [TrialState.COMPLETE] * 3
    assert stored_space(again) == {"x": [0, 10]}
    with pytest.raises(NeuroclassError, match="another search space"):
        check_study_space(again, {"x": [0, 20]})


def test_unreachable_postgresql_fails_in_one_line_with_password_masked(tmp_path):
    url = f"postgresql://tuner:s3cret@127.0.0.1:{free_port()}/search"  # nothing listens there
    with pytest.raises(NeuroclassError) as caught:
        open_storage(url, tmp_path)
    message = str(caught.value)
    assert "s3cret" not in message and "postgresql://tuner:***@127.0.0.1" in message
    assert "refused" in message and "start the database server" in message
    assert "\n" not in message


def test_missing_database_names_the_fix(postgresql_server, tmp_path):
    with pytest.raises(NeuroclassError, match=r"does not exist.*create the database"):
        open_storage(postgresql_server.url("no_such_database"), tmp_path)


def test_two_workers_share_a_study_on_postgresql(postgresql_url, tmp_path):
    study = queue_jobs(postgresql_url, tmp_path, "shared")
    workers = [start_worker(postgresql_url, "shared", tmp_path, "--meet", "2") for _ in range(2)]
    assert [finish(w, tmp_path) for w in workers] == [0, 0]

    complete = check_jobs_done_once(study)
    assert {t.user_attrs["pid"] for t in complete} == {w.pid for w in workers}
    assert not [t for t in study.trials if t.state == TrialState.FAIL]


def test_killed_worker_trial_is_failed_and_run_again(postgresql_url, tmp_path):
    study = queue_jobs(postgresql_url, tmp_path, "killed")
    doomed = start_worker(postgresql_url, "killed", tmp_path, "--stall")
    stalled = wait_for(study, lambda t: t.user_attrs.get("stalled") and t.state == TrialState.RUNNING,
                       "stalled in the first worker")
    survivor = start_worker(postgresql_url, "killed", tmp_path)
    wait_for(study, lambda t: t.state == TrialState.COMPLETE, "completed by the second worker")
    doomed.send_signal(signal.SIGKILL)
    assert finish(doomed, tmp_path) == -signal.SIGKILL
    assert finish(survivor, tmp_path) == 0

    complete = check_jobs_done_once(study)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [stalled.number]
    retry = next(t for t in complete if t.user_attrs["job"] == stalled.user_attrs["job"])
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == stalled.number
    assert RetryHeartbeatStaleTrialCallback.retry_history(retry) == [stalled.number]
    assert retry.user_attrs["pid"] == survivor.pid
    assert {t.user_attrs["pid"] for t in complete} == {survivor.pid}
