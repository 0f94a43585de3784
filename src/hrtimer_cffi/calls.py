"""Plain callables on timers: ``call_later``, ``call_at``, ``call_every``.

Each call is one object: the handle it returns (an ``ArcTimerHandle``,
detached, as asyncio's are: a discarded handle does not cancel the call;
``handle.cancel()`` does) is also the target its timer calls, so
``handle.target`` is the handle itself. ``slack`` and ``hard`` are
keyword-only and never passed to ``fn``; wrap ``fn`` in ``functools.partial``
for keyword arguments of its own.
"""

from __future__ import annotations

import contextvars
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

from . import _binding as _b
from ._units import (
    INT64_MAX,
    ClockId,
    Duration,
    TimerMode,
    TimerRestart,
    check_clock,
    check_interval,
    check_nonneg,
    check_ns,
)
from .arc import ArcTimerHandle
from .timer import CallbackContext, Timer, arm_seq

__all__ = ["Call", "PeriodicCall", "call_at", "call_every", "call_later"]

# Timers of finished calls, reused by the next ones: (mode, clock) -> timers.
# Making a Timer (C allocation and set-up) costs more than the rest of a call.
_POOL_MAX = 256
_pool: dict[tuple[int, int], list[Timer]] = {}


def _timer(domain: Any, mode: TimerMode, clock: ClockId, _getrefcount: Any = sys.getrefcount,
           ) -> Timer:
    """An inactive timer of ``mode`` and ``clock``: from the pool or new."""
    if domain is None:
        free = _pool.get((mode, clock))
        while free:
            try:
                timer = free.pop()
            except IndexError:  # another thread took the last one
                break
            # Reused only if nothing else refers to it any more (a user may
            # have kept ``handle.timer`` of the finished call), and if a
            # garbage cycle did not finalize it before its call.
            if _getrefcount(timer) == 2 and timer._c is not _b.DEAD_TIMER:
                return timer
    return Timer(mode, clock, _domain=domain)


class Call(ArcTimerHandle["Call"]):
    """What ``call_later``/``call_at`` return: the detached handle of the
    call, and the target its timer calls (``target`` is the handle itself):
    calls ``fn(*args)`` once, in ``context`` (the ``contextvars.Context``
    copied when the call was made, or the one given). What ``fn`` raises goes
    to ``sys.unraisablehook``. Made by those functions, not by users."""

    __slots__ = ("args", "context", "fn")
    fn: Callable[..., object]
    args: tuple[Any, ...]
    context: contextvars.Context

    @property
    def target(self) -> Call:
        """The call itself (it is its own target). Never raises."""
        return self

    def _hrt_timer(self) -> Timer:
        return self._timer

    def run(self, ctx: CallbackContext) -> TimerRestart | None:
        """Call ``fn(*args)`` in the call's context; raises what it raises."""
        self.context.run(self.fn, *self.args)
        return None

    def __del__(
        self, _pool: dict[tuple[int, int], list[Timer]] = _pool, _max: int = _POOL_MAX
    ) -> None:
        # Detached: dropping it never cancels. The call is dead, so its timer
        # is inactive (the core keeps the call alive while it is armed): the
        # timer goes back to the pool. (Bound at definition: module globals
        # are gone at exit.)
        timer = getattr(self, "_timer", None)
        if timer is None or timer._domain is not None:
            return
        free = _pool.setdefault((timer.mode, timer.clock), [])
        if len(free) < _max:
            free.append(timer)

    def __repr__(self) -> str:
        return f"<Call {self._timer._state()} {self.fn!r}>"


class PeriodicCall(Call):
    """What ``call_every`` returns: the detached handle of the call, and its
    target; calls ``fn(*args)`` every ``interval`` ns without drift. ``runs``
    counts calls, ``overruns`` intervals skipped because a call came late;
    ``runs + overruns`` equals elapsed intervals; ``lateness`` is how late
    (ns) the latest call began after its scheduled time (0 before the
    first). If ``fn`` raises, the exception goes to ``sys.unraisablehook``
    and the calls stop."""

    __slots__ = ("interval", "lateness", "overruns", "runs")
    interval: int
    runs: int
    overruns: int
    lateness: int

    def run(self, ctx: CallbackContext, _now: Any = _b.timer_now,
            _soft: Any = _b.timer_soft_expires) -> TimerRestart:
        """Call ``fn(*args)`` in the call's context, forward by whole
        intervals, restart; raises what ``fn`` raises."""
        self.runs += 1
        c = self._timer._c
        self.lateness = _now(c) - _soft(c)
        self.context.run(self.fn, *self.args)
        # Forward from the time fn returned: intervals that passed while it
        # ran are overruns, not calls to catch up.
        n = ctx.forward_now(self.interval)
        self.overruns += n - 1
        return TimerRestart.RESTART

    def __repr__(self) -> str:
        return (
            f"<PeriodicCall {self._timer._state()} every {self.interval} ns {self.fn!r} "
            f"runs={self.runs}>"
        )


_CALL_MODES = {
    (hard, rel): (TimerMode.REL if rel else TimerMode.ABS)
    | (TimerMode.HARD if hard else TimerMode.SOFT)
    for hard in (False, True)
    for rel in (False, True)
}


def _mode(hard: bool, rel: bool) -> TimerMode:
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be a bool, got {type(hard).__name__}")
    return _CALL_MODES[hard, rel]


def check_fn(fn: object) -> None:
    """Raise TypeError unless ``fn`` is callable."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__} {fn!r}")


def _warn_loop_trap(fn: object) -> None:
    """A RuntimeWarning when ``fn`` is a method of an asyncio Future (or
    Task) or of an event loop (but ``call_soon_threadsafe``): it would run
    on an expiry thread, where neither is safe to touch and the loop does not
    wake up for it (the asyncio trap). Costs an attribute lookup for other
    callables (a bound method's kind differs by CPython version: C methods
    of ``_asyncio.Future`` are ``builtin_method`` on 3.12+)."""
    owner = getattr(fn, "__self__", None)
    if owner is None or type(owner) is types.ModuleType:
        return
    aio = sys.modules.get("asyncio")
    if aio is None:
        return
    if isinstance(owner, aio.Future) or (
        isinstance(owner, aio.AbstractEventLoop)
        and getattr(fn, "__name__", "") != "call_soon_threadsafe"
    ):
        warnings.warn(
            f"{fn!r} would run on an hrtimer expiry thread, not on its event loop's "
            "thread: asyncio objects are not thread-safe there and the loop does not "
            "wake up for it. Use hrtimer_cffi.aio.call_later/call_at/call_every (they "
            "run fn on the loop's thread) or loop.call_soon_threadsafe",
            RuntimeWarning,
            stacklevel=4,
        )


def call_later(
    delay: Duration, fn: Callable[..., object], *args: Any, slack: Duration = 0,
    hard: bool = False, context: contextvars.Context | None = None,
) -> Call:
    """Call ``fn(*args)`` once, ``delay`` ns from now (MONOTONIC).

    ``delay`` and ``slack`` are durations: int ns (``ms(5)``, not ``5``) or
    a ``datetime.timedelta``. ``slack`` (>= 0) lets the call run up to that
    much later, so wake-ups can coalesce. ``hard=True`` runs it on the
    expiry thread (lowest latency; keep it short). ``fn`` runs in
    ``context`` (a ``contextvars.Context``; default: a copy of the current
    one, as asyncio's ``call_later`` does). Returns a detached handle.
    Raises TypeError/ValueError before arming for a delay or slack that is
    neither int nor timedelta, negative, or outside int64, a non-bool
    ``hard``, a non-callable fn, or a context that is not a Context.
    """
    return later(None, delay, fn, args, slack, hard, context)


def call_at(
    when: int,
    fn: Callable[..., object],
    *args: Any,
    clock: ClockId = ClockId.MONOTONIC,
    slack: Duration = 0,
    hard: bool = False,
    context: contextvars.Context | None = None,
) -> Call:
    """Call ``fn(*args)`` once at ``when``, an absolute time in int ns on
    ``clock`` (e.g. ``now() + ms(5)``; an absolute REALTIME call follows
    wall-clock jumps). A time already past calls it at once: ``call_at(ms(5),
    fn)`` is 5 ms after the clock's zero, long past, so it runs now; a delay
    is ``call_later``. ``slack``: ns (>= 0) or a timedelta, as in
    ``call_later``. Returns a detached handle. Raises TypeError/ValueError
    before arming for a non-int ``when`` (a timedelta included: it is a
    duration) or one outside int64, a bad or negative slack, an unknown
    clock, a non-bool ``hard``, a non-callable fn, or a bad context
    (``context`` as in ``call_later``).
    """
    return at(None, when, fn, args, clock, slack, hard, context)


def call_every(
    interval: Duration,
    fn: Callable[..., object],
    *args: Any,
    first: Duration | None = None,
    clock: ClockId = ClockId.MONOTONIC,
    slack: Duration = 0,
    hard: bool = False,
    context: contextvars.Context | None = None,
) -> PeriodicCall:
    """Call ``fn(*args)`` every ``interval`` ns, the first call ``first`` ns
    from now (default: one interval), drift-free (the expiry is forwarded by
    whole intervals, never re-based on the late wake-up). ``interval`` (> 0),
    ``first`` and ``slack`` (>= 0, as in ``call_later``) are int ns or a
    ``datetime.timedelta``. The grid is on ``clock``: MONOTONIC (default) or
    BOOTTIME (counts suspend); on REALTIME or TAI the calls follow wall-clock
    jumps. If ``fn`` raises, the calls stop. ``context`` as in
    ``call_later``. Returns a detached handle, a ``PeriodicCall`` with
    ``runs``/``overruns``/``lateness`` (``handle.target`` is the handle
    itself). Raises TypeError/ValueError before arming for an interval,
    first or slack that is neither int nor timedelta, out of range
    (interval <= 0, first or slack < 0, outside int64), an unknown clock, a
    non-bool ``hard``, a non-callable fn, or a bad context.
    """
    return every(None, interval, fn, args, slack, hard, context, first, clock)


# The implementations, shared with testing.ManualClock (domain: its base).

_new = object.__new__
_py_start = _b.py_start


def _context(context: object) -> contextvars.Context:
    if context is None:
        return _copy_context()
    if type(context) is not contextvars.Context:
        raise TypeError(
            f"context must be a contextvars.Context or None, got {type(context).__name__}"
        )
    return context


_copy_context = contextvars.copy_context


def _arm(call: Call, timer: Timer, fn: Callable[..., object], args: tuple[Any, ...],
         context: contextvars.Context, expires: int, slack: int) -> Call:
    """Arm ``timer`` (inactive) with checked arguments for the new ``call``
    (its handle and target, detached); a start that fails leaves the timer
    stopped."""
    call._detached = True
    call._gen = timer._gen = next(arm_seq)
    call._timer = timer
    call.fn = fn
    call.args = args
    call.context = context
    domain = timer._domain
    try:
        if domain is not None:
            domain.check_open()
        rc = _py_start(timer._c, expires, slack, id(call))
        if rc < 0:
            _b.raise_errno(rc, "start()")
    except BaseException:
        _b.timer_cancel(timer._c)
        raise
    return call


def later(
    domain: Any, delay: object, fn: Callable[..., object], args: tuple[Any, ...],
    slack: object, hard: bool, context: object = None,
) -> Call:
    """``call_later`` on ``domain`` (None: the real base)."""
    if type(delay) is not int or not 0 <= delay <= INT64_MAX:
        delay = check_nonneg("delay", delay)
    if type(slack) is not int or not 0 <= slack <= INT64_MAX:
        slack = check_nonneg("slack", slack)
    if not callable(fn):
        check_fn(fn)
    _warn_loop_trap(fn)
    ctx = _copy_context() if context is None else _context(context)
    if hard is False or hard is True:
        timer = _timer(domain, *_LATER_KEYS[hard])
    else:
        timer = _timer(domain, _mode(hard, True), ClockId.MONOTONIC)  # raises TypeError
    return _arm(_new(Call), timer, fn, args, ctx, delay, slack)


_LATER_KEYS = {hard: (_mode(hard, True), ClockId.MONOTONIC) for hard in (False, True)}


def at(
    domain: Any, when: object, fn: Callable[..., object], args: tuple[Any, ...],
    clock: object, slack: object, hard: bool, context: object = None,
) -> Call:
    """``call_at`` on ``domain`` (None: the real base)."""
    w = check_ns("when", when)
    sl = check_nonneg("slack", slack)
    check_fn(fn)
    _warn_loop_trap(fn)
    ctx = _context(context)
    timer = _timer(domain, _mode(hard, False), check_clock(clock))
    return _arm(_new(Call), timer, fn, args, ctx, w, sl)


_WALL_CLOCKS = (ClockId.REALTIME, ClockId.TAI)


def every(
    domain: Any, interval: object, fn: Callable[..., object], args: tuple[Any, ...],
    slack: object, hard: bool, context: object = None, first: object = None,
    clock: object = ClockId.MONOTONIC,
) -> PeriodicCall:
    """``call_every`` on ``domain`` (None: the real base). On a wall clock
    the timer is absolute (a relative REALTIME timer runs on MONOTONIC)."""
    i = check_interval("interval", interval)
    f = i if first is None else check_nonneg("first", first)
    sl = check_nonneg("slack", slack)
    check_fn(fn)
    _warn_loop_trap(fn)
    ctx = _context(context)
    ck = check_clock(clock)
    wall = ck in _WALL_CLOCKS
    timer = _timer(domain, _mode(hard, not wall), ck)
    expires = min(timer.now() + f, INT64_MAX) if wall else f
    p: PeriodicCall = _new(PeriodicCall)
    p.interval = i
    p.runs = 0
    p.overruns = 0
    p.lateness = 0
    _arm(p, timer, fn, args, ctx, expires, sl)
    return p
