"""Timers whose callback is C code: it runs on the expiry thread without the GIL.

``CTimer`` takes any C function ``int (*)(struct hrt_timer *, void *data)``
(a cffi function pointer) or the name of a builtin. The builtins come with
Python front ends: ``LatencyRecorder`` (``now - expires`` per expiry into a
buffer), ``ExpiryCounter`` and ``EventfdTimer``.
"""

from __future__ import annotations

import math
import operator
import select
from datetime import timedelta
from typing import Any, SupportsIndex, cast

from . import _binding as _b
from ._binding import CData
from ._units import (
    ClockId,
    Duration,
    TimerMode,
    check_nonneg,
    check_ns,
)
from .timer import Timer, _refuse_copy

__all__ = ["CTimer", "EventfdTimer", "ExpiryCounter", "LatencyRecorder"]

_HARD_REL = TimerMode.REL | TimerMode.HARD


_FD_MAX = 2**31 - 1  # a C int


def _check_count(name: str, value: object, minimum: int, maximum: int = 2**63 - 1) -> int:
    # Any integer type (numpy's too) but bool, as for nanoseconds.
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    v = operator.index(cast(SupportsIndex, value))
    if not minimum <= v <= maximum:
        raise ValueError(f"{name} must be from {minimum} to {maximum}, got {v}")
    return v


def _poll_ms(timeout: object) -> int | None:
    """``timeout`` seconds or a timedelta (None: forever) as poll()'s
    milliseconds, rounded up."""
    if timeout is None:
        return None
    if isinstance(timeout, timedelta):
        ms = max(0, -(-timeout // timedelta(milliseconds=1)))
    else:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(
                f"timeout must be seconds, a timedelta or None, got {type(timeout).__name__}"
            )
        if not math.isfinite(timeout):
            raise ValueError(
                f"timeout must be finite seconds or None (wait forever), got {timeout}"
            )
        ms = max(0, math.ceil(timeout * 1000))
    if ms > _FD_MAX:
        raise ValueError(
            f"timeout must be at most {_FD_MAX // 1000} s or None (wait forever), got {timeout}"
        )
    return ms


class CTimer(Timer):
    """A timer with a C callback and its ``void *`` data (default: HARD, REL).

    ``fn`` (an ``ffi.callback`` too), ``data`` and ``keep`` are held for the
    timer's life (``keep``: e.g. the buffer ``data`` points into). Dropping
    the timer cancels it and waits for a running callback before they are
    released. Cannot be copied or pickled (TypeError). Raises
    TypeError/ValueError for a bad callback, data, mode or clock.
    """

    __slots__ = ("_data", "_fn", "_keep")

    def __init__(
        self,
        fn: Any,
        data: Any = None,
        mode: TimerMode = _HARD_REL,
        clock: ClockId = ClockId.MONOTONIC,
        *,
        keep: object = None,
    ) -> None:
        self._fn = _b.as_c_callback(fn)
        self._data = _b.as_c_data(data)
        if isinstance(fn, str):
            _b.check_builtin_data(fn, data)
        # The C timer calls through fn and into data: both live as long as it
        # (Timer.__del__ frees it before the slots are cleared).
        self._keep = (keep, data, fn)
        super().__init__(mode, clock)

    def _callback(self) -> tuple[CData, CData]:
        return (self._fn, self._data)

    def start(self, expires: Duration, *, slack: Duration = 0) -> None:
        """Arm (re-arm if armed) to fire within ``[expires, expires + slack]``.
        ``expires``: REL mode, a delay in ns (>= 0) or a timedelta; ABS mode, an
        absolute time in int ns on the clock. ``slack``: ns (>= 0) or a
        timedelta. Raises TypeError/ValueError for bad input, before arming."""
        if self.mode & TimerMode.REL:
            e = check_nonneg("expires (relative)", expires)
        else:
            e = check_ns("expires", expires)
        _b.ctimer_start(self._c, e, check_nonneg("slack", slack))

    def cancel(self) -> bool:
        """True if it was queued; waits for a running callback."""
        return self._cancel()

    def try_to_cancel(self) -> int:
        """1 removed, 0 inactive, -1 callback running."""
        return self._try_to_cancel()


class _Builtin:
    """A builtin C callback's timer with its Python front end."""

    timer: CTimer
    __reduce_ex__ = _refuse_copy

    def start(self, expires: Duration, *, slack: Duration = 0) -> None:
        """Arm the timer (``expires`` and ``slack`` as ``CTimer.start``: ns or
        a timedelta); raises as it does."""
        self.timer.start(expires, slack=slack)

    def cancel(self) -> bool:
        """Stop it; waits for a running callback. True if it was queued."""
        return self.timer.cancel()


class LatencyRecorder(_Builtin):
    """Measures callback lateness in C: each expiry records ``now - expires``
    (ns) until ``capacity`` samples; periodic when ``interval`` (ns, or a
    timedelta) > 0 (drift-free, overruns counted). Raises TypeError/ValueError for bad arguments
    (``capacity`` from 1 to ``MAX_CAPACITY``), MemoryError if the buffer
    cannot be allocated."""

    MAX_CAPACITY = 1 << 28  # samples (2 GiB of int64)

    def __init__(
        self,
        capacity: int,
        *,
        interval: Duration = 0,
        mode: TimerMode = _HARD_REL,
        clock: ClockId = ClockId.MONOTONIC,
    ) -> None:
        self._fd = -1
        cap = _check_count("capacity", capacity, 1)
        if cap > self.MAX_CAPACITY:
            raise ValueError(f"capacity must be <= {self.MAX_CAPACITY} samples, got {cap}")
        iv = check_nonneg("interval", interval)
        self.capacity = cap
        self._fd = _b.eventfd_new()
        self._rec, samples = _b.latency_rec_new(cap, iv, self._fd)
        self.timer = CTimer("latency", self._rec, mode, clock, keep=samples)

    @property
    def count(self) -> int:
        """Samples recorded so far."""
        return _b.latency_count(self._rec)

    @property
    def overruns(self) -> int:
        """Intervals skipped by a periodic recorder."""
        return int(self._rec.overruns)

    def wait(self, timeout: float | timedelta | None = None) -> bool:
        """Wait until the buffer is full; False on timeout (seconds, as
        ``threading.Event.wait``, or a timedelta; None: forever). Raises
        TypeError for another type, ValueError for a non-finite timeout or
        one beyond poll()'s range (~24.8 days)."""
        ms = _poll_ms(timeout)
        if self.count >= self.capacity:
            return True
        if self._fd < 0:
            return False
        p = select.poll()
        p.register(self._fd, select.POLLIN)
        return bool(p.poll(ms)) or self.count >= self.capacity

    def samples(self) -> list[int]:
        """The recorded lateness values, ns."""
        return _b.latency_samples(self._rec)

    def fileno(self) -> int:
        """An eventfd that becomes readable when the buffer is full (-1 once
        closed)."""
        return self._fd

    def close(self, _fd_close: Any = _b.fd_close) -> None:
        """Cancel the timer and close the eventfd; samples stay readable."""
        # (_fd_close is bound at definition, for __del__ at interpreter exit.)
        timer = getattr(self, "timer", None)
        if timer is not None:
            timer.cancel()
        if self._fd >= 0:
            # The timer object may outlive us and be restarted: never post
            # to a closed (and perhaps reused) descriptor.
            rec = getattr(self, "_rec", None)
            if rec is not None:
                rec.done_fd = -1
            _fd_close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            self.close()

    def __repr__(self) -> str:
        return (
            f"<LatencyRecorder {self.count}/{self.capacity} samples "
            f"overruns={self.overruns} timer={self.timer!r}>"
        )


class ExpiryCounter(_Builtin):
    """Counts expiries in C; periodic when ``interval`` (ns, or a timedelta)
    > 0, stopping after ``limit`` runs when ``limit`` > 0."""

    def __init__(
        self,
        *,
        interval: Duration = 0,
        limit: int = 0,
        mode: TimerMode = _HARD_REL,
        clock: ClockId = ClockId.MONOTONIC,
    ) -> None:
        iv = check_nonneg("interval", interval)
        lim = _check_count("limit", limit, 0)
        self._c = _b.counter_new(iv, lim)
        self.timer = CTimer("count", self._c, mode, clock)

    @property
    def count(self) -> int:
        """Expiries so far."""
        return _b.counter_value(self._c)

    def __repr__(self) -> str:
        return f"<ExpiryCounter count={self.count} timer={self.timer!r}>"


class EventfdTimer(_Builtin):
    """Adds 1 to an eventfd per expiry (periodic when ``interval``, ns or a
    timedelta, is > 0); poll or
    ``loop.add_reader`` the ``fileno()``, ``read()`` the count.

    By default it makes its own eventfd; ``fd=`` posts to an existing one
    instead (several timers may share it), which ``close()`` leaves open.
    """

    def __init__(
        self,
        *,
        interval: Duration = 0,
        mode: TimerMode = _HARD_REL,
        clock: ClockId = ClockId.MONOTONIC,
        fd: int | None = None,
    ) -> None:
        self._fd = -1
        iv = check_nonneg("interval", interval)
        if fd is not None:
            fd = _check_count("fd", fd, 0, _FD_MAX)
        self._owned = fd is None
        self._fd = _b.eventfd_new() if fd is None else fd
        self._p = _b.eventfd_post_new(self._fd, iv)
        try:
            self.timer = CTimer("eventfd", self._p, mode, clock)
        except BaseException:
            self._release_fd()
            raise

    def try_to_cancel(self) -> int:
        """1 removed, 0 inactive, -1 callback running (it posts once more)."""
        return self.timer.try_to_cancel()

    def fileno(self) -> int:
        """The eventfd (-1 once closed)."""
        return self._fd

    def read(self) -> int:
        """Expiries since the last read (0 if none; never blocks)."""
        return _b.eventfd_read(self._fd)

    def _release_fd(self, _fd_close: Any = _b.fd_close) -> None:
        # The timer object may outlive us and be restarted: never post to a
        # closed (and perhaps reused) descriptor. (_fd_close is bound at
        # definition, for __del__ at interpreter exit.)
        self._p.fd = -1
        if self._owned:
            _fd_close(self._fd)
        self._fd = -1

    def close(self) -> None:
        """Cancel the timer and stop it posting; close the eventfd if it is
        its own. Idempotent."""
        if self._fd >= 0:
            self.timer.cancel()
            self._release_fd()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0 and hasattr(self, "timer"):
            self.close()

    def __repr__(self) -> str:
        return f"<EventfdTimer fd={self._fd} timer={self.timer!r}>"
