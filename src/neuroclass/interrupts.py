"""Ctrl-C (SIGINT), SIGTERM and SIGHUP (the terminal closed, an ssh connection dropped) for the
`neuroclass train` command (the library installs no handler).

The first signal asks training to stop after the current step (training.callbacks.StopRequest),
and one line on stderr says at once what will happen: during training, a stop after the step with
a checkpoint; before it (while the data loads), a stop after the first step; after it (the
evaluation, the run's files, the report), the run finishing. The glassbox network's loop keeps no
checkpoint, so for its runs the line says that none is kept (a stopped run is finished with its
weights so far; a search's trial or a cross-validation's fold is discarded). A Ctrl-C while a stop
is pending raises KeyboardInterrupt: a stop at once. A repeated SIGHUP or SIGTERM keeps the
pending stop: a closed terminal often sends SIGHUP twice, and supervisors repeat SIGTERM (GNU
parallel's default --termseq sends it three times), so a repeat is no person's "now"; SIGKILL
remains for that.

SIGHUP means the terminal is gone: writes to it fail (EIO). The handler then points the standard
descriptors that were on a terminal at /dev/null, so that the progress display and the final
lines write harmlessly and the run still saves its checkpoint and exits 129; descriptors on a
file or a pipe (a log) are kept. The previous handlers are put back afterwards.

Example::

    with stop_on_signals() as interrupts:
        pipeline.train(cfg, callbacks=[interrupts.phase], stop=interrupts.stop)
"""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Iterator

from torch import nn

try:
    import termios
except ImportError:  # Windows: no terminals in this sense, and no SIGHUP
    termios = None

from neuroclass.runs.glassbox_module import GlassboxModule
from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.training.families import is_glassbox
from neuroclass.training.state import TrainState

SIGHUP = getattr(signal, "SIGHUP", None)  # None on Windows
# 128 + the signal's number, as shells report; SIGHUP only where the system has it (not Windows)
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143,
               **({signal.SIGHUP: 129} if hasattr(signal, "SIGHUP") else {})}
AGAIN = "press Ctrl-C again to stop at once"  # said after a SIGINT only: a person at the keyboard
WHAT_HAPPENS = {"before": "stopping after the first training step, keeping a checkpoint",
                "training": "stopping after the current step",
                "after": "training is over: finishing the run (evaluation, files, report)"}
# the same for a run that keeps no checkpoint (the glassbox network's)
NO_CHECKPOINT = "a glassbox run keeps no checkpoint to resume from"
WHAT_HAPPENS_UNCHECKPOINTED = {"before": f"stopping after the first training step ({NO_CHECKPOINT})",
                               "training": f"stopping after the current step ({NO_CHECKPOINT})",
                               "after": WHAT_HAPPENS["after"]}


class Phase(Callback):
    """Where a run is: "before" training, "training", or "after" it (a callback of the fit), and
    whether its training keeps checkpoints (``checkpoints``: as given before training, then the
    model's at each fit's start: the glassbox network's loop keeps none)."""

    def __init__(self, checkpoints: bool = True) -> None:
        self.now, self.checkpoints = "before", checkpoints

    def what_happens(self) -> str:
        """What a stop request does now, in words."""
        return (WHAT_HAPPENS if self.checkpoints else WHAT_HAPPENS_UNCHECKPOINTED)[self.now]

    def on_fit_start(self, state: TrainState, model: nn.Module) -> None:
        self.now, self.checkpoints = "training", not isinstance(model, GlassboxModule)

    def on_fit_end(self, state: TrainState, model: nn.Module) -> None:
        self.now = "after"


@dataclass
class Interrupts:
    """The stop request that the handlers set, the signals received (in order), and the Phase
    callback to add to the fit, which picks the line the first signal prints."""

    stop: StopRequest = field(default_factory=StopRequest)
    received: list[int] = field(default_factory=list)
    phase: Phase = field(default_factory=Phase)

    def exit_code(self) -> int:
        """The exit code of a run stopped by the first signal received (130 without one)."""
        return EXIT_SIGNAL[self.received[0]] if self.received else EXIT_SIGNAL[signal.SIGINT]

    def handle(self, signum: int, frame: object) -> None:
        """The signal handler: a stop request and its line; KeyboardInterrupt for a Ctrl-C once a
        stop is pending; on SIGHUP, the terminal's descriptors pointed at /dev/null."""
        pending = self.stop.requested
        self.received.append(signum)
        if signum == signal.SIGINT and pending:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        self.stop.request(f"interrupted by {name}")
        what = self.phase.what_happens()
        line = f"{name} received again: still {what}" if pending else f"{name} received: {what}"
        if signum == signal.SIGINT:
            line += f"; {AGAIN}"
        # os.write, not print: a handler may run while the main code is inside a write to stderr;
        # OSError ignored: a closed terminal fails writes (EIO), and the stop must go on
        with contextlib.suppress(OSError):
            os.write(2, f"neuroclass: {line}\n".encode())
        if signum == SIGHUP:
            detach_from_terminal()


def on_terminal(fd: int) -> bool:
    """Whether descriptor ``fd`` is on a terminal, a live one or one hung up (whose calls fail
    with EIO, where os.isatty says False); False for a file, a pipe, /dev/null or a closed fd."""
    if termios is None:
        return False
    try:
        termios.tcgetattr(fd)
    except termios.error as exc:
        return exc.args[0] == errno.EIO
    return True


def detach_from_terminal() -> None:
    """Points descriptors 0, 1 and 2 that are on a terminal at /dev/null (after a SIGHUP: the
    terminal is gone). Those on a file or a pipe are kept; a failure leaves a descriptor as it was."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        try:
            for fd in (0, 1, 2):
                if on_terminal(fd):
                    with contextlib.suppress(OSError):
                        os.dup2(null, fd)
        finally:
            os.close(null)


@contextlib.contextmanager
def stop_on_signals(model: str | None = None) -> Iterator[Interrupts]:
    """SIGINT, SIGTERM and SIGHUP handled by an Interrupts for the ``with`` block. Outside the main
    thread (where Python allows no handlers) nothing is installed, nor for a signal the process
    ignores (a background job's SIGINT, nohup's SIGHUP: it stays ignored). The previous handlers
    are put back on exit. ``model``: the run's model.name when known, for the line a signal
    before training prints (the glassbox network keeps no checkpoint)."""
    interrupts = Interrupts(phase=Phase(checkpoints=not is_glassbox(model or "")))
    # None: a handler set outside Python, which Python cannot put back
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, interrupts.handle) for signum in EXIT_SIGNAL
                if main_thread and signal.getsignal(signum) not in (signal.SIG_IGN, None)}
    try:
        yield interrupts
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
