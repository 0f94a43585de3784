"""What every mechanism shares: the plan of a run, what it measured, and the
periodic loop's bookkeeping."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from .._units import ClockId, now

__all__ = [
    "NS_PER_S",
    "NS_PER_US",
    "PROG",
    "PROGRESS_MIN_S",
    "PROGRESS_PERIOD_S",
    "Measurement",
    "Periodic",
    "Plan",
    "advance",
    "timeout_note",
    "wait_for",
]

PROG = "hrtimer-latency"
NS_PER_US = 1_000
NS_PER_S = 1_000_000_000

#: How often (in seconds of measuring) a mechanism reports its progress.
PROGRESS_PERIOD_S = 0.25
#: Runs expected to last longer than this show a progress indicator.
PROGRESS_MIN_S = 2.0


@dataclasses.dataclass
class Measurement:
    """What one mechanism measured: lateness per wake-up (ns), overruns
    (intervals skipped because a wake-up came more than an interval late;
    None where the mechanism cannot tell), whether it ran to the end, and a
    note for the report."""

    samples: list[int]
    overruns: int | None
    complete: bool = True
    note: str | None = None


class Plan:
    """How one mechanism runs: ``total`` wake-ups (``warmup`` of them first,
    not reported) every ``interval`` ns on ``clock`` (within ``budget_s``
    seconds, when given, for loops that fall behind); ``report(done)`` is
    called about every ``PROGRESS_PERIOD_S`` from the measuring thread's safe
    points (never between a wake-up and its measurement)."""

    def __init__(
        self,
        clock: ClockId,
        interval: int,
        loops: int,
        warmup: int,
        report: Callable[[int], None],
        peer_offset: int = 0,
        budget_s: float | None = None,
    ) -> None:
        self.clock = clock
        self.interval = interval
        self.loops = loops
        self.warmup = warmup
        self.total = loops + warmup
        self.report = report
        self.peer_offset = peer_offset
        # wake-ups between two progress reports
        self.every = max(1, int(PROGRESS_PERIOD_S * NS_PER_S) // interval)
        # give up waiting for a timer-driven mechanism after this long
        self.give_up_s = 10.0 + 5.0 * self.total * interval / NS_PER_S
        # a run given a duration (not a count) stops a loop that falls behind
        # (each wake-up late by more than an interval) once this has passed
        self.budget_s = budget_s

    def first_expiry(self) -> int:
        """Absolute first expiry on ``clock``: one interval from now."""
        return now(self.clock) + self.interval


def advance(nxt: int, t: int, interval: int) -> tuple[int, int]:
    """Next expiry after serving ``nxt`` at ``t``, and intervals skipped
    (expiries that had already passed at ``t``)."""
    nxt += interval
    if nxt > t:
        return nxt, 0
    skipped = (t - nxt) // interval + 1
    return nxt + skipped * interval, skipped


def wait_for(done: Callable[[float], bool], count: Callable[[], int], plan: Plan) -> bool:
    """Wait for a timer-driven mechanism (``done(timeout)``), reporting
    progress; False if it did not finish in time."""
    give_up = time.monotonic() + plan.give_up_s
    while not done(PROGRESS_PERIOD_S):
        plan.report(count())
        if time.monotonic() > give_up:
            return False
    return True


def timeout_note(plan: Plan, got: int) -> str:
    return f"stopped after {plan.give_up_s:.0f} s with {got} of {plan.total} wake-ups"


class Periodic:
    """The bookkeeping of a periodic loop: the expiry it waits for
    (``next``), and ``record(t)`` for a wake-up at ``t`` — its lateness is
    stored, skipped expiries count as overruns, progress is reported every
    ``plan.every`` wake-ups (from the caller's thread, so only from the
    measuring thread: pass ``report=False`` for a loop run by other threads),
    and the next expiry is returned. ``done`` once ``plan.total`` are in."""

    def __init__(self, plan: Plan, first: int, report: bool = True) -> None:
        self.plan = plan
        self.next = first
        self.samples: list[int] = []
        self.overruns = 0
        self._report = report
        self._end = (None if plan.budget_s is None
                     else time.monotonic() + plan.budget_s)
        self.out_of_time = False

    @property
    def done(self) -> bool:
        if len(self.samples) >= self.plan.total:
            return True
        if self._end is not None and time.monotonic() > self._end:
            self.out_of_time = True
            return True
        return False

    def record(self, t: int) -> int:
        plan = self.plan
        self.samples.append(t - self.next)
        self.next, skipped = advance(self.next, t, plan.interval)
        self.overruns += skipped
        n = len(self.samples)
        if self._report and n % plan.every == 0:
            plan.report(n)
        return self.next

    def measurement(self, complete: bool = True) -> Measurement:
        got = list(self.samples)
        if not complete:
            return Measurement(got, self.overruns, False, timeout_note(self.plan, len(got)))
        if self.out_of_time:
            return Measurement(got, self.overruns, False,
                               f"fell behind: {len(got)} of {self.plan.total} wake-ups "
                               f"in the {self.plan.budget_s:.1f} s it was given")
        return Measurement(got, self.overruns)
