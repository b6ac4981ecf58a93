"""The CLI's signal handlers (neuroclass.interrupts): repeated signals, and a closed terminal."""
from __future__ import annotations

import errno
import io
import os
import signal
import sys

import pytest
import torch

from neuroclass.config import AugmentConfig, ModelConfig, OptimConfig, TrainConfig
from neuroclass.data.blocks import make_blocks
from neuroclass.interrupts import on_terminal, stop_on_signals
from neuroclass.models import create
from neuroclass.training.callbacks import Progress
from neuroclass.training.trainer import Trainer

needs_sighup = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this system")


@needs_sighup
@pytest.mark.parametrize("signum", ["SIGHUP", "SIGTERM"])
def test_a_repeated_sighup_or_sigterm_keeps_the_pending_stop_and_a_ctrl_c_stops_at_once(capfd, signum):
    signum = signal.Signals[signum]
    with stop_on_signals() as interrupts:
        interrupts.phase.now = "training"
        signal.raise_signal(signum)
        signal.raise_signal(signum)  # no KeyboardInterrupt: the checkpoint is still written
        assert interrupts.stop.requested and interrupts.received == [signum, signum]
        assert interrupts.stop.detail == f"interrupted by {signum.name}"
        if signum == signal.SIGTERM:  # (after a SIGHUP the lines went to the terminal, gone)
            assert capfd.readouterr().err.splitlines() == [
                "neuroclass: SIGTERM received: stopping after the current step",
                "neuroclass: SIGTERM received again: still stopping after the current step"]
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert interrupts.exit_code() == {signal.SIGHUP: 129, signal.SIGTERM: 143}[signum]


def test_only_the_ctrl_c_line_offers_a_second_ctrl_c(capfd):
    with stop_on_signals() as interrupts:
        interrupts.phase.now = "training"
        signal.raise_signal(signal.SIGINT)
        assert capfd.readouterr().err == ("neuroclass: SIGINT received: stopping after the current step; "
                                          "press Ctrl-C again to stop at once\n")
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert interrupts.received == [signal.SIGINT, signal.SIGINT] and interrupts.exit_code() == 130


@needs_sighup
def test_on_terminal_is_true_for_a_live_or_hung_up_terminal_and_false_for_a_pipe():
    master, slave = os.openpty()
    read, write = os.pipe()
    try:
        assert on_terminal(slave) and not on_terminal(write)
        os.close(master)  # the terminal hangs up: its calls now fail with EIO
        with pytest.raises(OSError) as failed:
            os.write(slave, b"x")
        assert failed.value.errno == errno.EIO
        assert on_terminal(slave) and not os.isatty(slave)
    finally:
        for fd in (slave, read, write):
            os.close(fd)


@needs_sighup
def test_sighup_on_a_closed_terminal_points_the_standard_descriptors_at_dev_null():
    """Descriptors 0 and 2 on a hung-up terminal, 1 on a pipe: the handler's line fails (EIO) and
    is ignored; 0 and 2 then lead to /dev/null, and 1, a log, is kept."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (0, 1, 2)}
    master, slave = os.openpty()
    read, write = os.pipe()
    try:
        for fd, target in ((0, slave), (1, write), (2, slave)):
            os.dup2(target, fd)
        os.close(master)
        with stop_on_signals() as interrupts:
            signal.raise_signal(signal.SIGHUP)  # raises nothing
            null = os.stat(os.devnull)
            assert [os.path.samestat(os.fstat(fd), null) for fd in (0, 1, 2)] == [True, False, True]
            assert os.write(2, b"a later line\n") == 13  # written harmlessly
            assert os.fstat(1).st_ino == os.fstat(write).st_ino
        assert interrupts.stop.requested and interrupts.exit_code() == 129
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        for fd in (slave, read, write):
            os.close(fd)


class Hungup(io.StringIO):
    """A terminal that was closed: every write fails with EIO."""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EIO, "Input/output error")


def test_progress_on_a_closed_terminal_lets_the_training_run_to_its_end():
    ds = make_blocks(n=64)
    torch.manual_seed(0)
    mean, std = torch.zeros(1, ds.x.shape[1], 1, 1), torch.ones(1, ds.x.shape[1], 1, 1)
    model = create(ModelConfig(name="mlp", options={"hidden": [8]}), ds.input_shape, len(ds.classes), mean, std)
    trainer = Trainer(TrainConfig(epochs=2, batch_size=16), OptimConfig(), AugmentConfig(), torch.device("cpu"),
                      callbacks=[Progress(Hungup())])
    state = trainer.fit(model, ds, None)
    assert len(state.history) == 2 and state.step == 8
