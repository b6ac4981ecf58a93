"""The report under a deadline: each optional part of the report runs in full, on a sample, or not at
all, so that a time-budgeted ``train`` ends on time with its report written.

A ``Part`` is one optional analysis with its cost model (costs.py builds them from the data's sizes):
seconds of its own work plus forward passes of the model and the calls that run them (each call costs
its overhead whatever its size), for the examples it looks at. Before a part runs,
``TimeBox.decide`` plans every part not yet decided against the time left now, less the
estimates of the parts decided and not yet ``done``, in priority order: a part gets its full size
when that fits, else the largest sample that fits (not below the smallest sample worth running),
else nothing. A sample is sized to SAMPLE_SHARE of the time it may have, so that an estimate a
little short does not cost the parts of higher priority still to run; a part that runs late in the
report (the charts) is decided at its start, which holds its time until it is done. Planning again
before each part lets a part that ran slower than estimated shrink the ones after it. Without a
deadline every part runs in full.

Example::

    box = TimeBox([Part("robustness", "robustness checks", 1000, 100, per_example=0.002)],
                  deadline=clock() + 1.0, clock=clock)
    box.decide("robustness").examples
    # -> 400 (a sample sized to 80% of the 1 s left: 1000 examples would take 2 s)
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

FULL, SAMPLE, SKIP = "full", "sample", "skip"
# share of its time a sampled part is sized to: its estimate erred by up to +20% (robustness curves
# under another process's load), and the rest is the margin of the parts after it
SAMPLE_SHARE = 0.8
# seconds: a part estimated at no more in full (what a line shows as 0.0 s) runs in full whatever the
# time left: an estimate of about nothing never costs an analysis (a few such parts stay within the
# margins of EXIT and the finish, costs.py)
TRIVIAL = 0.05


@dataclass(frozen=True)
class Part:
    """One optional part of the report. ``examples``: what it looks at in full; ``least``: the
    smallest sample worth running (``least == examples``: all or nothing). Its cost in seconds for
    ``n`` examples is ``fixed + calls * call + n * (per_example + passes * forward + calls_per_example
    * call)``, ``forward`` being the seconds of one forward pass of one example and ``call`` the
    seconds one call of the model costs whatever its size."""

    name: str  # key in report.json
    label: str  # what the page calls it: "robustness checks"
    examples: int
    least: int
    fixed: float = 0.0  # seconds, whatever the size
    per_example: float = 0.0  # seconds of its own work per example
    passes: float = 0.0  # forward passes of the model per example
    noun: str = "examples"  # what it counts: "training examples"
    calls: float = 0.0  # calls of the model whatever the size (a baseline pass, a last short batch)
    calls_per_example: float = 0.0  # calls of the model per example (1 / the rows of a batch)

    def seconds(self, n: int, forward: float, call: float = 0.0) -> float:
        """Estimated seconds for ``n`` examples (0.0 for none), a forward pass of one example
        costing ``forward`` seconds and each call of the model ``call`` more.

        >>> Part("x", "x", 100, 10, fixed=1.0, per_example=0.01, passes=2).seconds(50, 0.005)
        2.0
        >>> Part("x", "x", 100, 10, passes=1, calls=1, calls_per_example=0.5).seconds(4, 0.25, call=1.0)
        4.0
        """
        return self._fixed(call) + n * self._each(forward, call) if n > 0 else 0.0

    def most_within(self, seconds: float, forward: float, call: float = 0.0) -> int:
        """The most examples, up to ``examples``, whose estimate fits in ``seconds``; 0 when not
        even ``least`` fits.

        >>> Part("x", "x", 100, 10, fixed=1.0, per_example=0.1).most_within(3.05, 0.0)
        20
        """
        each, fixed = self._each(forward, call), self._fixed(call)
        if self.seconds(self.examples, forward, call) <= seconds:
            return self.examples
        n = math.floor((seconds - fixed) / each) if each > 0 and seconds > fixed else 0
        return n if n >= max(1, self.least) else 0

    def _fixed(self, call: float) -> float:
        return self.fixed + self.calls * call

    def _each(self, forward: float, call: float) -> float:
        return self.per_example + self.passes * forward + self.calls_per_example * call


@dataclass(frozen=True)
class Decision:
    """What one part gets: ``run`` is "full", "sample" or "skip"; ``examples`` of ``of``;
    ``estimate`` its seconds at that size (0.0 for a skip: what it holds of the time left);
    ``left`` the seconds the budget left it when decided (None without a deadline); ``needs`` its
    seconds in full, which a sample or a skip did not get."""

    name: str
    label: str
    run: str
    examples: int
    of: int
    estimate: float
    left: float | None
    noun: str = "examples"
    needs: float = 0.0

    @property
    def line(self) -> str:
        """The page's words for a part that did not run in full ("" for one that did).

        >>> Decision("robustness", "robustness checks", "skip", 0, 1000, 0.0, 0.8, needs=2.4).line
        'skipped: robustness checks (needs about 2.4 s; the time budget left 0.8 s)'
        """
        left = f"the time budget left {max(0.0, self.left or 0.0):.1f} s"
        if self.run == SKIP:
            return f"skipped: {self.label} (needs about {self.needs:.1f} s; {left})"
        if self.run == SAMPLE:
            return f"sampled: {self.label} on {self.examples:,} of {self.of:,} {self.noun} ({left})"
        return ""

    def as_dict(self) -> dict:
        return {**asdict(self), "estimate": round(self.estimate, 3), "needs": round(self.needs, 3),
                "left": None if self.left is None else round(self.left, 3), "line": self.line}


@dataclass
class TimeBox:
    """The optional ``parts`` of one report, in priority order (the first is served first), under
    ``deadline`` (a ``clock()`` reading; None: no limit). ``forward``: seconds of one forward pass
    of one example; ``call``: seconds each call of the model costs besides (costs.ForwardCost);
    ``finish``: seconds kept back for what follows the parts (the report's other sections, its
    files, the process's end)."""

    parts: list[Part]
    deadline: float | None = None
    clock: Callable[[], float] = time.perf_counter
    forward: float = 0.0
    finish: float = 0.0
    call: float = 0.0
    decisions: dict[str, Decision] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)  # decided, not yet done: their estimates are held
    started_left: float | None = None  # seconds left when the report began

    def __post_init__(self) -> None:
        self.started_left = self.left()

    def left(self) -> float | None:
        """Seconds until the deadline (None without one)."""
        return None if self.deadline is None else self.deadline - self.clock()

    def decide(self, name: str) -> Decision:
        """Plan the parts not yet decided against the time left now and return ``name``'s share
        (the same on a second call), held until ``done(name)``. Raises KeyError for a part the box
        does not hold."""
        if name not in self.decisions:
            self.decisions[name] = self._plan()[name]
            self.held.add(name)
        return self.decisions[name]

    def done(self, name: str) -> None:
        """Part ``name`` has run (or will not): its time is what the clock shows from now on."""
        self.held.discard(name)

    def _plan(self) -> dict[str, Decision]:
        left = self.left()
        held = sum(self.decisions[name].estimate for name in self.held)
        spare = math.inf if left is None else left - self.finish - held
        plan = {}
        for part in self.parts:
            if part.name in self.decisions:
                continue
            needs = part.seconds(part.examples, self.forward, self.call)
            n = part.most_within(spare, self.forward, self.call)
            if 0 < n < part.examples:
                n = part.most_within(SAMPLE_SHARE * spare, self.forward, self.call)
            if needs <= TRIVIAL:
                n = part.examples
            run = FULL if n == part.examples else SAMPLE if n else SKIP
            estimate = part.seconds(n, self.forward, self.call)
            plan[part.name] = Decision(part.name, part.label, run, n, part.examples, estimate,
                                       None if left is None else spare, part.noun, needs)
            spare -= estimate
        return plan

    def record(self) -> dict:
        """For report.json: the seconds left at the start (None without a deadline) and every
        part's decision, those never asked for as decided now."""
        for part in self.parts:
            self.decide(part.name)
        return {"seconds_left": None if self.started_left is None else round(self.started_left, 3),
                "parts": [self.decisions[p.name].as_dict() for p in self.parts]}

    def lines(self) -> list[str]:
        """The page's line for each part that did not run in full, in priority order."""
        return [self.decisions[p.name].line for p in self.parts
                if p.name in self.decisions and self.decisions[p.name].run != FULL]
