"""Ctrl-C (SIGINT), SIGTERM and SIGHUP (the terminal closed, an ssh connection dropped) for the
`neuroclass train` command (the library installs no handler).

The first signal asks training to stop after the current step (training.callbacks.StopRequest),
and one line on stderr says at once what will happen: during training, a stop after the step with
a checkpoint; before it (while the data loads), a stop after the first step; after it (the
evaluation, the run's files, the report), the run finishing. A second signal raises
KeyboardInterrupt: a stop at once. The previous handlers are put back afterwards.

Example::

    with stop_on_signals() as interrupts:
        pipeline.train(cfg, callbacks=[interrupts.phase], stop=interrupts.stop)
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Iterator

from torch import nn

from neuroclass.training.callbacks import Callback, StopRequest
from neuroclass.training.state import TrainState

# 128 + the signal's number, as shells report; SIGHUP only where the system has it (not Windows)
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143,
               **({signal.SIGHUP: 129} if hasattr(signal, "SIGHUP") else {})}
AGAIN = "press Ctrl-C again to stop at once"
WHAT_HAPPENS = {"before": f"stopping after the first training step, keeping a checkpoint; {AGAIN}",
                "training": f"stopping after the current step; {AGAIN}",
                "after": f"training is over: finishing the run (evaluation, files, report); {AGAIN}"}


class Phase(Callback):
    """Where a run is: "before" training, "training", or "after" it (a callback of the fit)."""

    def __init__(self) -> None:
        self.now = "before"

    def on_fit_start(self, state: TrainState, model: nn.Module) -> None:
        self.now = "training"

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
        """The signal handler: a stop request and its line first, KeyboardInterrupt after."""
        self.received.append(signum)
        if self.stop.requested:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        self.stop.request(f"interrupted by {name}")
        # os.write, not print: a handler may run while the main code is inside a write to stderr
        os.write(2, f"neuroclass: {name} received: {WHAT_HAPPENS[self.phase.now]}\n".encode())


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Interrupts]:
    """SIGINT, SIGTERM and SIGHUP handled by an Interrupts for the ``with`` block. Outside the main
    thread (where Python allows no handlers) nothing is installed, nor for a signal the process
    ignores (a background job's SIGINT, nohup's SIGHUP: it stays ignored). The previous handlers
    are put back on exit."""
    interrupts = Interrupts()
    # None: a handler set outside Python, which Python cannot put back
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, interrupts.handle) for signum in EXIT_SIGNAL
                if main_thread and signal.getsignal(signum) not in (signal.SIG_IGN, None)}
    try:
        yield interrupts
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
