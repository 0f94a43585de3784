"""Precise sleeping (the kernel's ``hrtimer_nanosleep``): absolute deadlines,
GIL released, 1 ns timer slack for the sleep instead of the thread's default
50 us, resumed to the same deadline after a signal whose handler returns."""

from __future__ import annotations

from . import _binding as _b
from ._units import INT64_MAX, ClockId, check_clock, check_nonneg, check_ns

__all__ = ["sleep", "sleep_until"]


def sleep_until(deadline: int, clock: ClockId = ClockId.MONOTONIC) -> int:
    """Sleep until absolute ``deadline`` ns on ``clock``; return ns past it.

    A deadline already past returns at once. Ctrl-C raises KeyboardInterrupt as
    ``time.sleep`` does. Raises TypeError/ValueError for a non-int deadline or
    an unknown clock.
    """
    d = check_ns("deadline", deadline)
    c = check_clock(clock) if clock is not ClockId.MONOTONIC else clock
    return _b.sleep_until(c, d)


def sleep(delta: int, clock: ClockId = ClockId.MONOTONIC) -> None:
    """Sleep ``delta`` ns (>= 0), as ``sleep_until(now + delta)``."""
    d = check_nonneg("delta", delta)
    c = check_clock(clock) if clock is not ClockId.MONOTONIC else clock
    _b.sleep_until(c, min(int(_b.now(c)) + d, INT64_MAX))
