"""A deterministic timer base for tests: ``ManualClock``.

It runs the very same C queue and expiry code as the real base, with no
thread: its clocks (all four read the same time, REALTIME/TAI plus any
``shift_realtime``) stand still until ``advance(ns)``, which runs every due
callback in the calling thread, in expiry order.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from typing import Any

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup
else:  # pragma: no cover (3.10)
    from exceptiongroup import BaseExceptionGroup

from . import _binding as _b
from . import calls
from ._units import (
    INT64_MAX,
    INT64_MIN,
    ClockId,
    Duration,
    TimerMode,
    check_clock,
    check_delta,
    check_nonneg,
    check_ns,
)
from .arc import ArcTimerHandle
from .errors import TimerStateError
from .has_timer import HasTimer, TimerField
from .stats import _check_hard
from .timer import Timer, _refuse_copy

__all__ = ["ManualClock"]


class _Domain:
    """A ManualClock's C domain as its timers see it. They hold this, not the
    ManualClock: an armed timer's target is held by the core, and through it
    the timer, so a timer holding its clock would keep the clock forever."""

    __slots__ = ("c", "closed", "timers")

    def __init__(self, c: Any) -> None:
        self.c = c
        self.closed = False
        self.timers: weakref.WeakSet[Timer] = weakref.WeakSet()

    def check_open(self) -> None:
        if self.closed:
            raise TimerStateError("this timer's ManualClock is gone")


class ManualClock:
    """A manual timer base. Timers attach to it with ``attach()`` or are made
    on it with ``timer()``/``call_later()``/``call_at()``/``call_every()``.

    Dropping it cancels its timers (they no longer keep their targets alive;
    starting one raises TimerStateError). Cannot be copied or pickled."""

    def __init__(self, start: int = 0) -> None:
        self._advancing = 0
        t0 = check_ns("start", start)  # an absolute time: a timedelta is refused
        if t0 < 0:
            raise ValueError(f"start must be >= 0 ns, got {t0}")
        self._dom = _Domain(_b.domain_new_manual(t0))
        self._d = self._dom.c

    def now(self, clock: ClockId = ClockId.MONOTONIC) -> int:
        """The clock's reading."""
        self._check_open()
        return _b.domain_now(self._d, check_clock(clock))

    def advance(self, delta: int) -> int:
        """Move time forward by ``delta`` ns (>= 0, saturating at the int64
        limit) deadline by deadline, as a real clock would: the clock stops
        at each expiry in the window in turn (the earliest hard expiry of
        what is queued; every timer whose soft expiry has passed runs there
        too), runs what is due there, in expiry order, then goes on; last it
        reads ``now + delta``. So a 1 ms ``call_every`` runs 10 times in
        ``advance(ms(10))``, each call seeing its own time. Each stop runs a
        timer at most once: one still due after its callback (re-armed at or
        before that time) runs at the next stop. Returns the number of
        callbacks run.

        Raises what the callbacks raised, once time has reached the end: the
        exception itself if one callback raised, an ``ExceptionGroup`` of
        them (in order) if several did; each carries a note naming its
        target. A ``KeyboardInterrupt`` (any BaseException that is not an
        Exception) stops the advance at once and propagates: the clock stays
        at that expiry and the callbacks still due stay queued (errors of
        earlier callbacks then go to ``sys.unraisablehook``).
        TimerStateError when called from a callback of this clock.
        """
        return self._advance(check_nonneg("delta", delta), True)

    def advance_jump(self, delta: int) -> int:
        """Move time forward by ``delta`` ns in one jump, then run every due
        timer once, all seeing the end time (a 1 ms ``call_every`` runs once
        in ``advance_jump(ms(10))``, forwarding over 9 overruns): what a real
        base does after the process was stopped for ``delta``. Returns and
        raises as ``advance``."""
        return self._advance(check_nonneg("delta", delta), False)

    def _advance(self, delta: int, step: bool) -> int:
        self._check_open()
        d = self._d
        ran = 0
        collector = _b.collect_errors()
        self._advancing += 1
        try:
            with collector:
                now = _b.domain_now(d, ClockId.MONOTONIC)
                end = min(now + delta, INT64_MAX)
                at = INT64_MIN  # the last stop: what was due there ran there
                while step:
                    nxt = _b.domain_next_expiry(d, at)
                    if nxt > end or nxt <= at:  # (INT64_MAX: none left)
                        break
                    now = _b.domain_now(d, ClockId.MONOTONIC)
                    at = max(nxt, now)
                    ran += _b.domain_advance(d, at - now)
                if not step or at < end:
                    now = _b.domain_now(d, ClockId.MONOTONIC)
                    ran += _b.domain_advance(d, max(end - now, 0))
        except BaseException:
            for e in collector.errors:
                _b.report_unraisable(e, "timer callback of", "a ManualClock (advance interrupted)")
            raise
        finally:
            self._advancing -= 1
        errors = collector.errors
        if len(errors) == 1:
            raise errors[0]
        if errors:
            # (an ExceptionGroup when all are Exceptions, as they are in practice)
            raise BaseExceptionGroup(f"advance(): {len(errors)} timer callbacks raised", errors)
        return ran

    def shift_realtime(self, delta: Duration) -> None:
        """Jump REALTIME and TAI by ``delta`` (int ns, any sign, or a
        ``datetime.timedelta``), as setting the wall clock would."""
        self._check_open()
        _b.domain_shift_realtime(self._d, check_delta("delta", delta))

    def stats(self, hard: bool = False) -> dict[str, int]:
        """Expiry statistics of this clock's SOFT context, or with
        ``hard=True`` of its HARD ones (summed), as ``hrtimer_cffi.expiry_stats``
        (same keys, same default). Each stop of ``advance()`` is a wake-up."""
        self._check_open()
        return _b.domain_stats(self._d, _check_hard(hard))

    def timer(self, mode: TimerMode = TimerMode.REL, clock: ClockId = ClockId.MONOTONIC) -> Timer:
        """A ``Timer`` on this clock."""
        return Timer(mode, clock, _domain=self._dom)

    def attach(self, obj: HasTimer) -> Timer:
        """Put ``obj``'s timer on this clock (mode and clock from its TimerField).

        Raises TypeError if ``obj`` is not a HasTimer with a TimerField, and
        TimerStateError if its timer is active.
        """
        if not isinstance(obj, HasTimer) or not type(obj)._hrt_field:
            raise TypeError(f"attach() needs a HasTimer with a TimerField, got {obj!r}")
        name = type(obj)._hrt_field
        field = getattr(type(obj), name)
        assert isinstance(field, TimerField)
        old = getattr(obj, "_hrt_t", None)
        if old is not None and old.is_active():
            raise TimerStateError("attach(): the object's timer is active; cancel it first")
        return TimerField.install(
            obj, Timer(field.mode, field.clock, _domain=self._dom), replace=True
        )

    def call_later(
        self, delay: int, fn: Callable[..., object], *args: Any, slack: int = 0,
        hard: bool = False,
    ) -> ArcTimerHandle[Any]:
        """``hrtimer_cffi.call_later`` on this clock; raises as it does."""
        return calls.later(self._dom, delay, fn, args, slack, hard)

    def call_at(
        self, when: int, fn: Callable[..., object], *args: Any,
        clock: ClockId = ClockId.MONOTONIC, slack: int = 0, hard: bool = False,
    ) -> ArcTimerHandle[Any]:
        """``hrtimer_cffi.call_at`` on this clock; raises as it does."""
        return calls.at(self._dom, when, fn, args, clock, slack, hard)

    def call_every(
        self, interval: int, fn: Callable[..., object], *args: Any, slack: int = 0,
        hard: bool = False,
    ) -> ArcTimerHandle[Any]:
        """``hrtimer_cffi.call_every`` on this clock; raises as it does."""
        return calls.every(self._dom, interval, fn, args, slack, hard)

    def close(self) -> None:
        """Cancel this clock's timers (they release their targets) and free
        it, as dropping it does; idempotent. Afterwards its methods, and
        starting one of its timers, raise TimerStateError. Raises
        TimerStateError from inside its own ``advance()``."""
        if self._advancing:
            raise TimerStateError("close(): this ManualClock is advancing (called from "
                                  "one of its callbacks, or while another thread advances it)")
        rc = self._close()
        if rc < 0:
            _b.raise_errno(rc, "close(): a timer of this ManualClock was armed again or "
                               "is running meanwhile; close()")

    def _check_open(self) -> None:
        if self._dom.closed:
            raise TimerStateError("this ManualClock is closed")

    __reduce_ex__ = _refuse_copy

    def _close(self, _cancel: Any = _b.timer_cancel, _free: Any = _b.domain_free) -> int:
        """0, or -EBUSY (the clock stays open: a timer of it was armed again
        or runs on another thread meanwhile). (The defaults are bound at
        definition: module globals are gone at exit.)"""
        dom = getattr(self, "_dom", None)
        if dom is None or dom.closed:
            return 0
        dom.closed = True
        # Release the core's references to the targets, then the domain (the
        # C side frees it once its last timer is freed).
        for timer in list(dom.timers):
            _cancel(timer._c)
        rc: int = _free(dom.c)
        if rc < 0:
            dom.closed = False
        return rc

    def __del__(self) -> None:
        # A finalizer cannot retry: on -EBUSY the C domain stays allocated
        # (its timers hold it; nothing else can reach it).
        self._close()
