"""Plain callables on timers: ``call_later``, ``call_at``, ``call_every``.

Their handles come back detached, as asyncio's do: a discarded handle does not
cancel the call; ``handle.cancel()`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._units import ClockId, TimerMode, TimerRestart, check_clock, check_interval, check_nonneg
from .arc import ArcTimerHandle
from .timer import CallbackContext, HasTimer, Timer, TimerField

__all__ = ["Call", "PeriodicCall", "call_at", "call_every", "call_later"]


class Call(HasTimer):
    """The target of ``call_later``/``call_at``: calls ``fn(*args)`` once."""

    timer = TimerField()

    def __init__(self, timer: Timer, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.__dict__["timer"] = timer
        self.fn = fn
        self.args = args

    def run(self, ctx: CallbackContext) -> TimerRestart | None:
        self.fn(*self.args)
        return None

    def __repr__(self) -> str:
        return f"<Call {self.fn!r}>"


class PeriodicCall(HasTimer):
    """The target of ``call_every``: calls ``fn(*args)`` every ``interval``
    without drift. ``runs`` counts calls, ``overruns`` intervals skipped
    because a call came late; ``runs + overruns`` equals elapsed intervals."""

    timer = TimerField()

    def __init__(
        self, timer: Timer, interval: int, fn: Callable[..., object], args: tuple[Any, ...]
    ) -> None:
        self.__dict__["timer"] = timer
        self.interval = interval
        self.fn = fn
        self.args = args
        self.runs = 0
        self.overruns = 0

    def run(self, ctx: CallbackContext) -> TimerRestart:
        self.runs += 1
        self.fn(*self.args)
        self.overruns += ctx.forward(ctx.now, self.interval) - 1
        return TimerRestart.RESTART

    def __repr__(self) -> str:
        return f"<PeriodicCall every {self.interval} ns {self.fn!r} runs={self.runs}>"


def _mode(hard: bool, rel: bool) -> TimerMode:
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be a bool, got {type(hard).__name__}")
    return (TimerMode.REL if rel else TimerMode.ABS) | (
        TimerMode.HARD if hard else TimerMode.SOFT
    )


def check_fn(fn: object) -> None:
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__} {fn!r}")


def call_later(
    delay: int, fn: Callable[..., object], *args: Any, slack: int = 0, hard: bool = False
) -> ArcTimerHandle:
    """Call ``fn(*args)`` once, ``delay`` ns from now (MONOTONIC).

    ``hard=True`` runs it on the expiry thread (lowest latency; keep it short).
    Returns a detached handle. Raises TypeError/ValueError before arming for a
    non-int or negative delay or slack, or a non-callable fn.
    """
    d = check_nonneg("delay", delay)
    check_fn(fn)
    target = Call(Timer(_mode(hard, True)), fn, args)
    handle = target.start(d, slack=slack)
    handle.detach()
    return handle


def call_at(
    when: int,
    fn: Callable[..., object],
    *args: Any,
    clock: ClockId = ClockId.MONOTONIC,
    slack: int = 0,
    hard: bool = False,
) -> ArcTimerHandle:
    """Call ``fn(*args)`` once at absolute ``when`` ns on ``clock`` (an absolute
    REALTIME call follows wall-clock jumps). Returns a detached handle."""
    w = check_nonneg("when", when)
    check_fn(fn)
    target = Call(Timer(_mode(hard, False), check_clock(clock)), fn, args)
    handle = target.start(w, slack=slack)
    handle.detach()
    return handle


def call_every(
    interval: int,
    fn: Callable[..., object],
    *args: Any,
    slack: int = 0,
    hard: bool = False,
) -> ArcTimerHandle:
    """Call ``fn(*args)`` every ``interval`` ns, first one interval from now,
    drift-free (the expiry is forwarded by whole intervals, never re-based on
    the late wake-up). If ``fn`` raises, the calls stop. Returns a detached
    handle; ``handle.target`` is the ``PeriodicCall`` with ``runs``/``overruns``.
    """
    i = check_interval("interval", interval)
    check_fn(fn)
    target = PeriodicCall(Timer(_mode(hard, True)), i, fn, args)
    handle = target.start(i, slack=slack)
    handle.detach()
    return handle
