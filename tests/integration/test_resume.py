"""Interrupted training, end to end in subprocesses: SIGKILL at random moments and in the middle of a
checkpoint write, Ctrl-C and SIGTERM, a full disk; each interrupted run resumed with
`neuroclass train --resume` ends with the weights of a run never interrupted (marked slow)."""
from __future__ import annotations

import contextlib
import json
import os
import random
import re
import resource
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neuroclass.runs import RunFolder
from neuroclass.training.checkpoint import checkpoint_folders, read_checkpoint

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "neuroclass.cli"]
# a tiny run: 27 steps an epoch of a 16-unit MLP with dropout and augmentation (every generator a
# step draws from), one thread, a checkpoint after each epoch and every 30 ms of training inside one.
# train.checkpoint_share=1: a checkpoint after every epoch however short (the default spaces the
# writes of tiny epochs), so that a kill repeats at most one epoch and the N-th write is known
RUN = ["train", "blocks:n=600,size=8", "--model", "mlp", "--set", "model.options.hidden=[16]",
       "--set", "train.threads=1", "--set", "train.batch_size=16", "--set", "augment.enabled=true",
       "--set", "train.checkpoint_minutes=0.0005", "--set", "train.checkpoint_share=1", "--no-report"]
SHORT, LONG = [*RUN, "--epochs", "6"], [*RUN, "--epochs", "40"]  # LONG: time to send a signal in
QUIET_SHORT = [*SHORT, "--quiet"]

# Starting Python and importing torch costs seconds on 2 CPU cores; a zygote pays it once and forks
# a fresh process per run (it never runs torch itself, so forking it is safe). One JSON request a
# line: {"argv", "log", "pause", "ignore", "read_only"} starts `neuroclass` with output to the log
# and answers the pid; {"wait": pid} answers the exit code once it ends (negative: killed by that
# signal). "pause": [N, PATH] makes the N-th checkpoint the run writes create the file PATH once its
# files are on disk and wait until PATH is removed before its rename (a moment to kill the process
# in, or to make the folder unwritable); "ignore": signal names to ignore; "read_only": as root,
# drop the capability to write into folders without write permission (CAP_DAC_OVERRIDE), so that a
# read-only folder is read-only for the run as for any user.
ZYGOTE = r"""
import ctypes, json, os, signal, sys, time
from pathlib import Path
import neuroclass.cli, neuroclass.pipeline, torch._dynamo  # torch.optim imports torch._dynamo on first use

def pause_at(number, path):
    written = [0]
    def before_rename(tmp):
        written[0] += 1
        if written[0] == number:
            Path(path).touch()
            while Path(path).exists():
                time.sleep(0.01)
    return before_rename

def drop_dac_override():
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
    libc, header, data = ctypes.CDLL(None, use_errno=True), Header(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[0].effective &= ~(1 << 1)  # CAP_DAC_OVERRIDE
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")

while True:
    line = sys.stdin.readline()
    if not line:
        break
    request = json.loads(line)
    if "wait" in request:
        print(os.waitstatus_to_exitcode(os.waitpid(request["wait"], 0)[1]), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = 1
        try:
            for name in request.get("ignore", []):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
            if request.get("read_only") and os.geteuid() == 0:
                drop_dac_override()
            hook = pause_at(*request["pause"]) if request.get("pause") else None
            code = neuroclass.cli.main(request["argv"], before_rename=hook)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
"""


class Zygote:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)

    def _ask(self, request: dict) -> int:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def start(self, argv: list[str], log: Path, pause: tuple[int, Path] | None = None,
              ignore: tuple[str, ...] = (), read_only: bool = False) -> int:
        return self._ask({"argv": argv, "log": str(log), "pause": [pause[0], str(pause[1])] if pause else None,
                          "ignore": list(ignore), "read_only": read_only})

    def wait(self, pid: int) -> int:
        return self._ask({"wait": pid})

    def run(self, argv: list[str], log: Path) -> int:
        return self.wait(self.start(argv, log))

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    yield z
    z.close()


def wait_for(condition, what: str, limit: float = 120.0):
    """Poll ``condition`` until it holds; fail naming ``what`` after ``limit`` seconds (a hang)."""
    end = time.monotonic() + limit
    while not (found := condition()):
        if time.monotonic() > end:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.002)
    return found


def partial_folder(out: Path) -> Path | None:
    found = [p for p in out.glob(".partial-*") if (p / "config.yaml").is_file()] if out.is_dir() else []
    return found[0] if found else None


def finished_weights(out: Path) -> dict:
    (run,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    return RunFolder.open(run).weights()


def finished_bytes(out: Path) -> dict:
    """The bytes of the finished run's files that an interrupted and resumed run writes the same."""
    (run,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    return {name: (run / name).read_bytes() for name in ("model.safetensors", "metrics.json")}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


@pytest.fixture(scope="module")
def reference(zygote, tmp_path_factory):
    """Uninterrupted SHORT and LONG runs: their weights, steps per epoch and SHORT's training time."""
    out = tmp_path_factory.mktemp("reference")
    pid = zygote.start([*SHORT, "--out", str(out / "short")], out / "short.log")
    wait_for(lambda: partial_folder(out / "short"), "the run's partial folder")
    started = time.monotonic()
    assert zygote.wait(pid) == 0, (out / "short.log").read_text()
    seconds = time.monotonic() - started  # the span in which kills land; never asserted on
    assert zygote.run([*LONG, "--out", str(out / "long")], out / "long.log") == 0
    (run,) = (out / "short").iterdir()
    steps = RunFolder.open(run).split_record()["sizes"]["train"] // 16
    return {"short": finished_weights(out / "short"), "long": finished_weights(out / "long"),
            "short_bytes": finished_bytes(out / "short"), "long_bytes": finished_bytes(out / "long"),
            "steps_per_epoch": steps, "seconds": seconds}


def resume_in(zygote, path: Path, log: Path) -> dict:
    """`neuroclass train --resume PATH` (a partial folder or the folder of runs) to its end; the
    recorded resume."""
    assert zygote.run(["train", "--resume", str(path), "--quiet", "--no-report"], log) == 0, log.read_text()
    out = path.parent if path.name.startswith(".partial-") else path
    (run,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    return json.loads((run / "timing.json").read_text())["resumed"][-1]


def test_sigkill_at_20_random_moments_then_resume_ends_with_the_same_weights(zygote, reference, tmp_path):
    moments, window = random.Random(20), 0.8 * reference["seconds"]  # the end holds the evaluation
    killed = attempts = 0
    while killed < 20:
        attempts += 1
        assert attempts <= 30, "most runs finished before their kill"
        out, log = tmp_path / f"run{attempts}", tmp_path / f"run{attempts}.log"
        pid = zygote.start([*SHORT, "--out", str(out)], log)
        wait_for(lambda: partial_folder(out), "the run's partial folder")
        started = time.monotonic()
        time.sleep(moments.uniform(0, window))
        os.kill(pid, signal.SIGKILL)
        code = zygote.wait(pid)
        finished = any(not p.name.startswith(".") for p in out.iterdir())  # committed before the kill
        if code == 0 or finished:  # nothing to resume: a shorter window (this machine got faster)
            window = min(window, 0.8 * (time.monotonic() - started))
            continue
        assert code == -signal.SIGKILL
        killed += 1
        # the progress display prints an epoch's line after its checkpoint: a printed epoch is a saved one
        printed = len(re.findall(r"^epoch \d+:", log.read_text(), re.M))
        resumed = resume_in(zygote, out, tmp_path / f"resume{attempts}.log")
        assert_same_weights(finished_weights(out), reference["short"])
        assert finished_bytes(out) == reference["short_bytes"]  # the same files, byte for byte
        # at most one epoch repeated (exact with train.checkpoint_share=1 in RUN: a checkpoint after
        # every epoch): the kill came before the end of epoch printed + 1
        assert resumed["step"] >= printed * reference["steps_per_epoch"], (resumed, printed)


def test_sigkill_while_a_checkpoint_is_written_leaves_the_previous_one(zygote, reference, tmp_path):
    out, pause = tmp_path / "runs", tmp_path / "pause"
    pid = zygote.start([*SHORT, "--out", str(out)], tmp_path / "run.log", pause=(3, pause))
    wait_for(pause.exists, "the third checkpoint's pause before its rename")
    folder = partial_folder(out) / "checkpoint"
    assert [n for n, _ in checkpoint_folders(folder)] == [2]
    (temporary,) = folder.glob(".tmp-ckpt-000003-*")
    assert {p.name for p in temporary.iterdir()} == {"state.json", "tensors.safetensors"}
    os.kill(pid, signal.SIGKILL)
    assert zygote.wait(pid) == -signal.SIGKILL
    previous = read_checkpoint(folder)  # verified: complete and unchanged
    assert previous.record["sequence"] == 2
    assert resume_in(zygote, out, tmp_path / "resume.log")["step"] == previous.step
    assert_same_weights(finished_weights(out), reference["short"])


def interrupted_cli(out: Path, signum: int, env: dict | None = None) -> subprocess.CompletedProcess:
    """The LONG run through the real `neuroclass` command, sent ``signum`` once it has a checkpoint."""
    process = subprocess.Popen([*CLI, *LONG, "--out", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    wait_for(lambda: partial_folder(out) and checkpoint_folders(partial_folder(out) / "checkpoint"),
             "a first checkpoint")
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_ctrl_c_saves_a_checkpoint_prints_the_resume_command_and_exits_130(zygote, reference, tmp_path):
    out = tmp_path / "runs"
    done = interrupted_cli(out, signal.SIGINT)
    assert done.returncode == 130, done.stderr
    assert ("neuroclass: SIGINT received: stopping after the current step; press Ctrl-C again to stop at once"
            in done.stderr.splitlines())  # said at once
    (line,) = [line for line in done.stderr.splitlines() if "--resume" in line]
    assert re.fullmatch(r"neuroclass: interrupted by SIGINT at epoch \d+, step \d+; resume with: "
                        r"neuroclass train --resume \S+", line)
    command = shlex.split(line.split("resume with: ")[1])
    partial = Path(command[-1])
    assert partial == partial_folder(out) and checkpoint_folders(partial / "checkpoint")
    assert command[:3] == ["neuroclass", "train", "--resume"]
    resume_in(zygote, partial, tmp_path / "resume.log")
    assert_same_weights(finished_weights(out), reference["long"])
    assert finished_bytes(out) == reference["long_bytes"]
    assert not partial.exists()


def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path):
    out = tmp_path / "runs"
    done = interrupted_cli(out, signal.SIGTERM)
    assert done.returncode == 143, done.stderr
    assert "interrupted by SIGTERM" in done.stderr and "neuroclass train --resume" in done.stderr
    checkpoint = read_checkpoint(partial_folder(out) / "checkpoint")
    assert checkpoint.step > 0 and "stop" not in checkpoint.record  # the resumed run goes on


def test_sighup_saves_a_checkpoint_and_exits_129(tmp_path):
    out = tmp_path / "runs"
    done = interrupted_cli(out, signal.SIGHUP)
    assert done.returncode == 129, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "--resume" in line]
    assert re.fullmatch(r"neuroclass: interrupted by SIGHUP at epoch \d+, step \d+; resume with: "
                        r"neuroclass train --resume \S+", line)
    assert read_checkpoint(partial_folder(out) / "checkpoint").step > 0


def test_sighup_from_a_closed_terminal_saves_a_checkpoint_exits_129_and_resumes(zygote, reference, tmp_path):
    """The run's descriptors on a pseudo-terminal whose master side is closed (the terminal window
    or the ssh connection is gone: writes fail with EIO), then SIGHUP twice, as a closed terminal
    often sends it: a checkpoint, exit 129, no traceback, and a resume that ends as the uninterrupted run."""
    out = tmp_path / "runs"
    master, slave = os.openpty()
    process = subprocess.Popen([*CLI, *LONG, "--out", str(out)], stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    os.set_blocking(master, False)

    def drain() -> None:  # the progress bar's output, so that the child never waits on a full pty
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(master, 65536):
                pass

    wait_for(lambda: drain() or (partial_folder(out) and checkpoint_folders(partial_folder(out) / "checkpoint")),
             "a first checkpoint")
    os.close(master)  # writes to the slave side now fail with EIO
    process.send_signal(signal.SIGHUP)
    process.send_signal(signal.SIGHUP)
    assert process.wait(timeout=120) == 129
    partial = partial_folder(out)
    assert read_checkpoint(partial / "checkpoint").step > 0
    resume_in(zygote, partial, tmp_path / "resume.log")
    assert_same_weights(finished_weights(out), reference["long"])


def test_an_ignored_sighup_stays_ignored(zygote, tmp_path):
    """Under nohup (SIGHUP ignored from the start) a closed terminal does not stop training."""
    out, log = tmp_path / "runs", tmp_path / "run.log"
    pid = zygote.start([*LONG, "--out", str(out)], log, ignore=("SIGHUP",))
    wait_for(lambda: partial_folder(out) and checkpoint_folders(partial_folder(out) / "checkpoint"),
             "a first checkpoint")
    os.kill(pid, signal.SIGHUP)
    os.kill(pid, signal.SIGINT)
    assert zygote.wait(pid) == 130
    text = log.read_text()
    assert "SIGHUP" not in text and "interrupted by SIGINT" in text, text


def test_a_double_ctrl_c_before_the_first_checkpoint_says_nothing_was_saved_and_leaves_nothing(zygote, tmp_path):
    out, log, pause = tmp_path / "runs", tmp_path / "run.log", tmp_path / "pause"
    pid = zygote.start([*LONG, "--out", str(out)], log, pause=(1, pause))  # the first write waits
    wait_for(pause.exists, "the first checkpoint's files")
    os.kill(pid, signal.SIGINT)
    wait_for(lambda: "SIGINT received" in log.read_text(), "the first signal's line")
    os.kill(pid, signal.SIGINT)  # before the first checkpoint is renamed into place
    assert zygote.wait(pid) == 130
    assert log.read_text().splitlines()[-1] == ("neuroclass: stopped at once before the first checkpoint: "
                                                "nothing was saved (no checkpoint yet)")
    assert not out.exists()  # the run made --out: removed with its partial folder


def test_a_full_disk_while_checkpointing_is_one_error_line_and_the_last_checkpoint_stays(zygote, reference,
                                                                                            tmp_path):
    """Files may grow to 1 KiB once the second checkpoint is on disk (RLIMIT_FSIZE; SIGXFSZ ignored,
    so that a write past it fails with EFBIG, as on a full disk): the third cannot be written."""
    out, pause, log = tmp_path / "runs", tmp_path / "pause", tmp_path / "run.log"
    pid = zygote.start([*QUIET_SHORT, "--out", str(out)], log, pause=(2, pause), ignore=("SIGXFSZ",))
    wait_for(pause.exists, "the second checkpoint's pause")
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1024, 1024))
    pause.unlink()
    assert zygote.wait(pid) == 2, log.read_text()
    folder = partial_folder(out) / "checkpoint"
    assert log.read_text().strip().splitlines() == [
        f"neuroclass: error: {folder}: cannot write a checkpoint (File too large); free disk space or make the "
        f"folder writable, then continue with 'neuroclass train --resume {folder.parent}'"]
    last_good = read_checkpoint(folder)
    assert last_good.record["sequence"] == 2
    assert resume_in(zygote, folder.parent, tmp_path / "resume.log")["step"] == last_good.step
    assert_same_weights(finished_weights(out), reference["short"])


def test_a_read_only_checkpoint_folder_is_one_error_line_and_the_last_checkpoint_stays(zygote, tmp_path):
    """Run as root too: the run drops the capability that lets root write into read-only folders."""
    out, pause, log = tmp_path / "runs", tmp_path / "pause", tmp_path / "run.log"
    pid = zygote.start([*QUIET_SHORT, "--out", str(out)], log, pause=(2, pause), read_only=True)
    wait_for(pause.exists, "the second checkpoint's pause")
    folder = partial_folder(out) / "checkpoint"
    folder.chmod(0o555)
    try:
        pause.unlink()
        assert zygote.wait(pid) == 2, log.read_text()
        assert re.fullmatch(rf"neuroclass: error: {re.escape(str(folder))}: cannot write a checkpoint "
                            r"\(Permission denied\); .*", log.read_text().strip())
        assert read_checkpoint(folder).record["sequence"] == 1
    finally:
        folder.chmod(0o755)
