"""Clocks, modes, restart codes, time helpers, and argument validation."""

from __future__ import annotations

import enum
import math
import operator
from datetime import timedelta
from typing import SupportsIndex, TypeAlias, cast

from . import _binding as _b

__all__ = [
    "ClockId",
    "TimerMode",
    "TimerRestart",
    "ms",
    "now",
    "s",
    "us",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# What a duration (a delay, interval, slack, relative expiry, sleep) takes:
# int nanoseconds, or a timedelta, converted exactly. An absolute time is int
# nanoseconds only: a timedelta is not a time on a clock.
Duration: TypeAlias = int | timedelta


class ClockId(enum.IntEnum):
    """The clocks a timer can run on; values equal Linux ``clockid_t``.
    ``ClockId(n)`` raises ValueError for an unknown id."""

    REALTIME = 0
    MONOTONIC = 1
    BOOTTIME = 7
    TAI = 11


class TimerMode(enum.IntFlag):
    """Timer mode bits, with Linux's values.

    ``ABS``/``REL``: how ``start(expires)`` reads ``expires``: ``REL``, a delay
    (int ns or a timedelta); ``ABS``, an absolute time in int ns on the
    timer's clock (``now() + ms(5)``; ``ms(5)`` alone is long past, so the
    timer fires at once). ``HARD``: the
    callback runs on the core's expiry thread (lowest latency). ``SOFT`` (the
    default): it runs on a separate dispatch thread, so a slow callback never
    delays a HARD one. ``PINNED`` is rejected (whatever takes a mode raises
    ValueError): this core has no per-CPU bases.
    """

    ABS = 0
    REL = 1
    PINNED = 2
    SOFT = 4
    HARD = 8


class TimerRestart(enum.IntEnum):
    """What a callback returns. ``None`` means ``NO_RESTART``.

    ``RESTART`` re-queues the timer at its *current* expiry: forward it first.
    Any other return value raises TypeError, reported to ``sys.unraisablehook``.
    """

    NO_RESTART = 0
    RESTART = 1


_NS_PER_S = 1_000_000_000


def _coerce(name: str, value: object, duration: bool) -> int:
    """``value`` (not an exact int) as an int: any integer type but bool; for
    a duration, a timedelta too. Raises TypeError otherwise."""
    if isinstance(value, timedelta):
        if duration:
            # days, seconds, microseconds are ints: exact, no float rounding.
            return (value.days * 86_400 + value.seconds) * _NS_PER_S + value.microseconds * 1_000
        raise TypeError(
            f"{name} is an absolute time (int nanoseconds on its clock), got the duration "
            f"{value!r}; for a time that far from now pass now + ns, e.g. "
            "hrtimer_cffi.now() + hrtimer_cffi.ms(5)"
        )
    # Any integer type (numpy's too) but bool; never a float.
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        hint = "convert with hrtimer_cffi.us/ms/s" if isinstance(value, float) else ""
        if duration:
            hint += ("; " if hint else "") + "a datetime.timedelta is taken too"
        raise TypeError(
            f"{name} must be an int of nanoseconds, got {type(value).__name__} {value!r}"
            + (f" ({hint})" if hint else "")
        )
    return operator.index(cast(SupportsIndex, value))


def _int_ns(name: str, value: object) -> int:
    if type(value) is not int:
        value = _coerce(name, value, False)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{name} must fit in int64 nanoseconds, got {value}")
    return value


def _duration_ns(name: str, value: object) -> int:
    if type(value) is not int:
        value = _coerce(name, value, True)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{name} must fit in int64 nanoseconds, got {value}")
    return value


def check_ns(name: str, value: object) -> int:
    """Validate an absolute time, int64 nanoseconds (any sign): TypeError for
    a non-int (bool, float and timedelta included), ValueError outside int64."""
    return _int_ns(name, value)


def check_delta(name: str, value: object) -> int:
    """Validate a signed duration (a shift): int64 nanoseconds or a
    ``datetime.timedelta`` (converted exactly), any sign. TypeError for
    another type, ValueError outside int64."""
    return _duration_ns(name, value)


def check_nonneg(name: str, value: object) -> int:
    """Validate a duration >= 0: int64 nanoseconds or a ``datetime.timedelta``
    (converted exactly). TypeError for another type (bool and float
    included), ValueError below 0 or outside int64."""
    v = _duration_ns(name, value)
    if v < 0:
        raise ValueError(f"{name} must be >= 0 ns, got {v}")
    return v


def check_interval(name: str, value: object) -> int:
    """Validate a duration > 0 (an interval), as ``check_nonneg``; ValueError
    at or below 0."""
    v = _duration_ns(name, value)
    if v <= 0:
        raise ValueError(f"{name} must be > 0 ns, got {v}")
    return v


_CLOCKS: dict[int, ClockId] = {c.value: c for c in ClockId}
# Every valid mode value, so validation is one lookup (IntFlag arithmetic is slow).
_MODES: dict[int, TimerMode] = {
    m: TimerMode(m)
    for m in range(16)
    if not m & TimerMode.PINNED and (m & 0xC) != 0xC
}


def check_clock(value: object) -> ClockId:
    """Validate a clock: a ``ClockId`` or its int value. TypeError for a
    non-int, ValueError for an unknown clock id."""
    if type(value) is ClockId:
        return value
    if type(value) is int and value in _CLOCKS:
        return _CLOCKS[value]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"clock must be a ClockId, got {type(value).__name__} {value!r}")
    try:
        return ClockId(value)
    except ValueError:
        names = ", ".join(f"{c.name}={c.value}" for c in ClockId)
        raise ValueError(f"unknown clock {value!r}; expected one of {names}") from None


def check_mode(value: object) -> TimerMode:
    """Validate timer mode bits. TypeError for a non-int, ValueError for
    unknown bits, ``PINNED``, or ``SOFT`` with ``HARD``."""
    if type(value) is TimerMode or type(value) is int:
        mode = _MODES.get(value)
        if mode is not None:
            return mode
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"mode must be a TimerMode, got {type(value).__name__} {value!r}")
    if value & ~0xF or value < 0:
        raise ValueError(f"unknown TimerMode bits in {value!r}")
    mode = TimerMode(value)
    if mode & TimerMode.PINNED:
        raise ValueError(
            "TimerMode.PINNED is not supported: this core has one expiry thread per "
            "context (HARD, SOFT), not per-CPU bases"
        )
    if (mode & TimerMode.SOFT) and (mode & TimerMode.HARD):
        raise ValueError("TimerMode.SOFT and TimerMode.HARD exclude each other")
    return mode


def now(clock: ClockId = ClockId.MONOTONIC) -> int:
    """Now on ``clock`` in int nanoseconds. Raises TypeError/ValueError for a bad clock."""
    if clock is ClockId.MONOTONIC:
        return _b.now(1)
    return _b.now(check_clock(clock))


def _scale(name: str, x: object, factor: int) -> int:
    if not isinstance(x, (int, float)) and not isinstance(x, bool):
        if not hasattr(type(x), "__index__"):
            raise TypeError(f"{name}() takes an int or float, got {type(x).__name__} {x!r}")
        x = operator.index(cast(SupportsIndex, x))  # any integer type (numpy's too)
    if isinstance(x, bool):
        raise TypeError(f"{name}() takes an int or float, got {type(x).__name__} {x!r}")
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueError(f"{name}() needs a finite number, got {x!r}")
    scaled = x * factor
    if isinstance(scaled, float) and not math.isfinite(scaled):
        raise ValueError(f"{name}({x!r}) does not fit in int64 nanoseconds")
    v = round(scaled)
    if not INT64_MIN <= v <= INT64_MAX:
        raise ValueError(f"{name}({x!r}) does not fit in int64 nanoseconds")
    return v


def us(x: float) -> int:
    """Microseconds (int, any ``__index__`` integer, or float) to int
    nanoseconds, rounded. Raises TypeError for another type (bool included),
    ValueError for a non-finite float or a result outside int64."""
    return _scale("us", x, 1_000)


def ms(x: float) -> int:
    """Milliseconds (int or float) to int nanoseconds, rounded; raises as ``us``."""
    return _scale("ms", x, 1_000_000)


def s(x: float) -> int:
    """Seconds (int or float) to int nanoseconds, rounded; raises as ``us``."""
    return _scale("s", x, 1_000_000_000)
