"""Two `neuroclass tune` workers sharing one study on a real PostgreSQL server (marked slow): together
they complete exactly --trials trials, each run once; a worker killed with SIGKILL mid-trial has its
trial failed by the other after the heartbeat grace, and the other runs it again, once; workers
that open a new database at the same moment all get the storage.

Each worker is the command itself (`python -m neuroclass.cli tune DATA --storage URL --study NAME`)
with its own --out; the trials are tiny (digits, a 16-unit MLP, one epoch) and each worker trains on
one thread (two workers on two cores: PyTorch's default of one thread per core would have them
fight for the cores), so that a test takes well under a minute on two cores.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import neuroclass
from neuroclass.tuning.storage import open_storage
from neuroclass.tuning.trials import retry_of

# timeout: a hang guard (pytest-timeout), not a measurement
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240),
              pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")]

TRIALS = 12  # two workers sharing the study: each runs several (they start within a second of each other)
KILL_TRIALS = 8  # the survivor runs all but the doomed worker's trial, then the doomed one again
WAIT_SECONDS = 180  # the longest a test waits for a worker or a state before failing
SPACE = "optim.lr: {low: 1.0e-3, high: 1.0e-1, log: true}\n"  # continuous: no two trials draw the same


def worker_env() -> dict[str, str]:
    """The environment of a worker process: it imports the same neuroclass as the tests."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(neuroclass.__file__).parents[1]), env.get("PYTHONPATH", "")])
    env["PYTHONFAULTHANDLER"] = "1"  # a worker stopped for hanging writes where it hung to its log
    return env


def start_worker(tmp_path: Path, name: str, url: str, study: str, epochs: int, *options: str,
                 trials: int = TRIALS) -> subprocess.Popen:
    """`neuroclass tune digits` for ``study`` in ``url`` (``trials`` trials, one thread), --out
    tmp_path/name, output to name.log."""
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    command = [sys.executable, "-m", "neuroclass.cli", "tune", "digits", "--model", "mlp",
               "--set", "model.options.hidden=[16]", "--set", "train.tta=none", "--set", "train.threads=1",
               "--epochs", str(epochs), "--space", str(space), "--pruner", "none", "--sampler", "random",
               "--trials", str(trials),
               "--storage", url, "--study", study, "--out", str(tmp_path / name), *options]
    with open(tmp_path / f"{name}.log", "w") as log:
        return subprocess.Popen(command, cwd=tmp_path, env=worker_env(), stdout=log, stderr=subprocess.STDOUT)


def logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(tmp_path.glob("*.log")))


def stop_hung(workers: list[subprocess.Popen]) -> None:
    """End the workers still running with SIGABRT: each writes its threads' stacks to its log."""
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGABRT)
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()


def finish(worker: subprocess.Popen, tmp_path: Path) -> int:
    """The worker's exit code once it ends; the logs in the failure message when it does not."""
    try:
        return worker.wait(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        stop_hung([worker])
        pytest.fail(f"worker {worker.pid} did not finish within {WAIT_SECONDS} s; logs:\n{logs(tmp_path)}")


def wait_until(found, what: str, tmp_path: Path, workers: list[subprocess.Popen]):
    """``found()``'s first true value, polling; fails with the logs when a worker ends first."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        if any(w.poll() is not None for w in workers):
            break
        time.sleep(0.05)
    stop_hung(workers)
    pytest.fail(f"{what}: not seen; logs:\n{logs(tmp_path)}")


def study_folder(tmp_path: Path, name: str) -> Path:
    (folder,) = (tmp_path / name).glob("tune-digits-*")
    return folder


def run_folders(tmp_path: Path, name: str) -> set[str]:
    """The names of the finished run folders in worker ``name``'s trials/ folder."""
    return {p.name for p in (study_folder(tmp_path, name) / "trials").iterdir() if not p.name.startswith(".")}


def load_study(url: str, name: str, tmp_path: Path) -> optuna.Study:
    """The workers' study, read from the storage as they write it."""
    return optuna.load_study(study_name=name, storage=open_storage(url, tmp_path / "reader"))


def trial_name(number: int) -> str:
    return f"trial-{number:04d}"


def check_complete_once(study: optuna.Study, trials: int = TRIALS) -> list[optuna.trial.FrozenTrial]:
    """``trials`` COMPLETE trials, no two with the same values, nothing left waiting or running or
    pruned, and no failed trial but those that never trained (marked "surplus": two workers asked
    for the last trial at once); the COMPLETE trials."""
    every = study.get_trials(deepcopy=False)
    complete = [t for t in every if t.state == TrialState.COMPLETE]
    assert len(complete) == trials
    assert len({json.dumps(t.params, sort_keys=True) for t in complete}) == trials
    assert not [t for t in every if t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.PRUNED)]
    return complete


def check_leaderboard(tmp_path: Path, name: str, complete: list[optuna.trial.FrozenTrial]) -> list[dict]:
    """Worker ``name``'s leaderboard lists every COMPLETE trial of the shared study, best first."""
    rows = json.loads((study_folder(tmp_path, name) / "leaderboard.json").read_text())["rows"]
    done = [r for r in rows if r["state"] == "complete"]
    assert sorted(r["trial"] for r in done) == sorted(t.number for t in complete)
    assert done[0]["value"] == max(t.value for t in complete)
    return rows


# argv: FOLDER OPENERS URL...: for each URL in turn (a round), forks OPENERS processes that create
# FOLDER/ready-ROUND-I, wait for FOLDER/gate-ROUND, then all open the storage at one moment; exits 1
# after a round where one of them failed. Optuna is imported once, before the forks.
OPEN_AT_ONCE = """
import os, pathlib, sys, time, traceback
from neuroclass.tuning.storage import open_storage
folder, count = pathlib.Path(sys.argv[1]), int(sys.argv[2])
for round_, url in enumerate(sys.argv[3:]):
    gate, pids = folder / f"gate-{round_}", []
    for i in range(count):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                (folder / f"ready-{round_}-{i}").touch()
                while not gate.exists():
                    time.sleep(0.001)
                open_storage(url, folder)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    print(f"round {round_}: exit codes {codes}", flush=True)
    if codes != [0] * count:
        sys.exit(1)
"""


def test_workers_opening_a_new_database_at_once_all_get_the_storage(postgresql_server, tmp_path):
    # each round a new database whose tables 4 processes create at the same moment
    rounds, count = 3, 4
    urls = [postgresql_server.create_database(f"at_once_{os.getpid()}_{r}") for r in range(rounds)]
    with open(tmp_path / "openers.log", "w") as log:
        parent = subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, str(tmp_path), str(count), *urls],
                                  env=worker_env(), stdout=log, stderr=subprocess.STDOUT)
    for r in range(rounds):
        ready = [tmp_path / f"ready-{r}-{i}" for i in range(count)]
        # the gate opens once all 4 are forked and waiting: the 4 then open the storage together
        wait_until(lambda ready=ready: all(p.exists() for p in ready), f"round {r}: {count} openers ready",
                   tmp_path, [parent])
        (tmp_path / f"gate-{r}").touch()
    assert finish(parent, tmp_path) == 0, logs(tmp_path)
    assert (tmp_path / "openers.log").read_text().splitlines() == [
        f"round {r}: exit codes {[0] * count}" for r in range(rounds)]


def test_two_workers_complete_the_trials_once(postgresql_url, tmp_path):
    workers = [start_worker(tmp_path, name, postgresql_url, "pair", 1) for name in ("a", "b")]
    assert [finish(w, tmp_path) for w in workers] == [0, 0], logs(tmp_path)

    study = load_study(postgresql_url, "pair", tmp_path)
    complete = check_complete_once(study)
    failed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL]
    assert [t.number for t in failed if not t.user_attrs.get("surplus")] == []
    ran_a, ran_b = run_folders(tmp_path, "a"), run_folders(tmp_path, "b")
    assert ran_a and ran_b and not ran_a & ran_b  # both worked, never on the same trial
    assert ran_a | ran_b == {trial_name(t.number) for t in complete}
    for t in complete:  # each trial's run folder is where its worker wrote it, named after it
        assert Path(t.user_attrs["run"]).is_dir() and Path(t.user_attrs["run"]).name == trial_name(t.number)
    for name in ("a", "b"):
        assert len(check_leaderboard(tmp_path, name, complete)) == TRIALS  # surplus trials are left off
        assert not list((study_folder(tmp_path, name) / "trials").glob(".partial-*"))


def test_killed_worker_trial_is_failed_and_run_again_by_the_other(postgresql_url, tmp_path):
    # the doomed worker's trials train for many epochs: it is killed long before one finishes
    doomed = start_worker(tmp_path, "doomed", postgresql_url, "kill", 3000, "--heartbeat", "1", trials=KILL_TRIALS)

    def doomed_trial() -> list[Path]:  # its trial's run folder, being written
        return list((tmp_path / "doomed").glob("tune-digits-*/trials/.partial-trial-*"))

    (partial,) = wait_until(doomed_trial, "the doomed worker's trial running", tmp_path, [doomed])
    killed = int(partial.name.rsplit("-", 1)[1])
    survivor = start_worker(tmp_path, "survivor", postgresql_url, "kill", 1, "--heartbeat", "1", trials=KILL_TRIALS)
    study = load_study(postgresql_url, "kill", tmp_path)

    def others_done() -> bool:  # the survivor has run every other trial and waits for the doomed one
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) == KILL_TRIALS - 1

    wait_until(others_done, f"{KILL_TRIALS - 1} trials complete", tmp_path, [doomed, survivor])
    assert study.get_trials(deepcopy=False)[killed].state == TrialState.RUNNING  # killed mid-trial
    doomed.send_signal(signal.SIGKILL)
    assert finish(doomed, tmp_path) == -signal.SIGKILL
    assert finish(survivor, tmp_path) == 0, logs(tmp_path)

    assert json.loads((study_folder(tmp_path, "survivor") / "tune.json").read_text())["heartbeat"] == 1
    complete = check_complete_once(study, KILL_TRIALS)
    trials = study.get_trials(deepcopy=False)
    assert trials[killed].state == TrialState.FAIL
    assert [t.number for t in trials if t.state == TrialState.FAIL and not t.user_attrs.get("surplus")] == [killed]
    (retry,) = [t for t in complete if retry_of(t) == killed]
    assert retry.params == trials[killed].params
    assert run_folders(tmp_path, "survivor") == {trial_name(t.number) for t in complete}
    assert run_folders(tmp_path, "doomed") == set()
    rows = check_leaderboard(tmp_path, "survivor", complete)
    assert next(r for r in rows if r["trial"] == retry.number)["retry_of"] == killed
    assert next(r for r in rows if r["trial"] == killed)["state"] == "fail"
