"""Precise sleeping (the kernel's ``hrtimer_nanosleep``).

* Absolute deadlines: ``sleep_until`` returns how late it woke (ns); a sleep
  never ends before its deadline.
* The GIL is released for the whole sleep.
* Not subject to the calling thread's timer slack (50 us by default): the
  sleep runs with 1 ns slack and the thread's own slack is restored after.
* A signal whose handler returns does not shorten a sleep: it resumes to the
  same deadline. A handler that raises (Ctrl-C's ``KeyboardInterrupt``)
  propagates, as with ``time.sleep``.
* Clocks follow Linux: MONOTONIC and BOOTTIME sleep in ``clock_nanosleep``;
  an absolute REALTIME or TAI sleep follows wall-clock jumps (it is woken by a
  timer of the core, the kernel's ``hrtimer_sleeper``); a *relative* REALTIME
  sleep runs on MONOTONIC, as a relative REALTIME timer does.
"""

from __future__ import annotations

from . import _binding as _b
from ._units import INT64_MAX, ClockId, Duration, check_clock, check_nonneg, check_ns

__all__ = ["sleep", "sleep_until"]


def sleep_until(deadline: int, clock: ClockId = ClockId.MONOTONIC) -> int:
    """Sleep until ``deadline``, an absolute time in int ns on ``clock`` (e.g.
    ``now() + ms(5)``); return ns past it (>= 0).

    A deadline already past returns at once (``sleep_until(ms(5))`` is 5 ms
    after the clock's zero: long past). Raises TypeError/ValueError for a
    non-int (a timedelta included: it is a duration) or out-of-range deadline
    or an unknown clock, before sleeping.
    """
    d = check_ns("deadline", deadline)
    c = clock if clock is ClockId.MONOTONIC else check_clock(clock)
    return _b.sleep_until(c, d)


def sleep(delta: Duration, clock: ClockId = ClockId.MONOTONIC) -> None:
    """Sleep ``delta`` ns (>= 0; or a timedelta): ``sleep_until(now + delta)``
    on ``clock``.

    A relative REALTIME sleep measures on MONOTONIC (a wall-clock jump does
    not stretch or cut it). Raises TypeError/ValueError for a delta neither
    int nor timedelta, a negative one, or an unknown clock, before sleeping.
    """
    d = check_nonneg("delta", delta)
    c = clock if clock is ClockId.MONOTONIC else check_clock(clock)
    if c is ClockId.REALTIME:
        c = ClockId.MONOTONIC
    _b.sleep_until(c, min(int(_b.now(c)) + d, INT64_MAX))
