"""A deterministic timer base for tests: ``ManualClock``.

It runs the very same C queue and expiry code as the real base, with no
thread: its clocks (all four read the same time, REALTIME/TAI plus any
``shift_realtime``) stand still until ``advance(ns)``, which runs every due
callback in the calling thread, in expiry order.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from . import _binding as _b
from . import calls
from ._units import ClockId, TimerMode, check_clock, check_nonneg, check_ns
from .arc import ArcTimerHandle
from .errors import TimerStateError
from .has_timer import HasTimer, TimerField
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
        self._dom = _Domain(_b.domain_new_manual(check_nonneg("start", start)))
        self._d = self._dom.c

    def now(self, clock: ClockId = ClockId.MONOTONIC) -> int:
        """The clock's reading."""
        return _b.domain_now(self._d, check_clock(clock))

    def advance(self, delta: int) -> int:
        """Move time forward by ``delta`` ns (>= 0, saturating at the int64
        limit) and run what is due, each timer at most once (one still due
        after its callback runs at the next advance); returns the number of
        callbacks run. Raises TimerStateError from a callback of this clock.
        A KeyboardInterrupt (any BaseException that is not an Exception)
        raised by a callback propagates out of ``advance()``, and the
        callbacks still due stay queued."""
        return _b.domain_advance(self._d, check_nonneg("delta", delta))

    def shift_realtime(self, delta: int) -> None:
        """Jump REALTIME and TAI by ``delta`` ns, as setting the wall clock would."""
        _b.domain_shift_realtime(self._d, check_ns("delta", delta))

    def stats(self, hard: bool = False) -> dict[str, int]:
        """Expiry statistics of the SOFT (default) or HARD context."""
        return _b.domain_stats(self._d, hard)

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

    __reduce_ex__ = _refuse_copy

    def __del__(
        self, _cancel: Any = _b.timer_cancel, _free: Any = _b.domain_free
    ) -> None:
        # (Bound at definition: module globals are gone at exit.)
        dom = getattr(self, "_dom", None)
        if dom is None:
            return
        dom.closed = True
        # Release the core's references to the targets, then the domain (the
        # C side frees it once its last timer is freed).
        for timer in list(dom.timers):
            _cancel(timer._c)
        _free(dom.c)
