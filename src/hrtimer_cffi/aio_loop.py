"""A precise asyncio event loop: asyncio's selector loop whose waits end at a
nanosecond deadline, and never before a timer's deadline.

The stock loop waits in ``epoll_wait`` with a millisecond timeout (rounded
up), so every ``sleep``/``call_at``/``wait_for``/``timeout`` wakes 0-1 ms
late; its sweep of due timers also accepts handles up to one clock
resolution early. This loop changes only those two things:

* A deadline at most ``NEAR`` (3 ms) away arms a ``timerfd``
  (``CLOCK_MONOTONIC``, absolute) at the first nanosecond at which
  ``time.monotonic()`` reaches it. The timerfd sits in the selector's epoll
  set, edge-triggered, and the wait ends when it expires: one
  ``timerfd_settime`` per distinct earliest deadline, nothing to read
  afterwards. The selectors layer never sees the descriptor (it is not in
  its map, so ``select()`` skips its events). epoll's own timeout stays set,
  2 ms past the deadline, as a backstop.
* A deadline further away waits with the ordinary epoll timeout, shortened
  by ``NEAR`` so that it ends before the deadline: no system call beyond the
  stock loop's; the next iteration arms the timerfd.
* A timer handle runs only when ``loop.time() >= handle.when()``.

``loop.time()`` is ``time.monotonic()``, as in asyncio. Everything else
(sockets, pipes, subprocesses, signals, executors, debug mode) is
``asyncio.SelectorEventLoop``'s own code. With a selector other than an
``EpollSelector`` (e.g. ``SelectorEventLoop(selectors.PollSelector())``) the
loop waits as the stock one does and only the never-early rule applies.

Entry points, shaped like uvloop's: ``new_event_loop()``, ``EventLoop``,
``EventLoopPolicy``, ``run(coro)`` and ``install()``; on 3.12+ also
``asyncio.run(main(), loop_factory=new_event_loop)``.
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import math
import os
import select
import selectors
import sys
import time
from asyncio import base_events, coroutines, events, runners
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["EventLoop", "EventLoopPolicy", "install", "new_event_loop", "run"]

_T = TypeVar("_T")

#: A deadline nearer than this (seconds) is waited for on the timerfd; one
#: further away first waits with epoll's millisecond timeout, to this much
#: before it (more than epoll's rounding up to 1 ms plus the default 50 us
#: timer slack, so that wait ends before the deadline).
NEAR = 0.003
# With the timerfd armed, epoll's own timeout is only a backstop this long
# after the deadline.
_BACKSTOP = 0.002

_base: Any = base_events  # the constants and helpers of BaseEventLoop._run_once
_runners: Any = runners
_MAX_TIMEOUT: float = _base.MAXIMUM_SELECT_TIMEOUT
_MIN_SCHEDULED: int = _base._MIN_SCHEDULED_TIMER_HANDLES
_MIN_CANCELLED_FRACTION: float = _base._MIN_CANCELLED_TIMER_HANDLES_FRACTION
_NS = 1_000_000_000
_EPOLL_EDGE = select.EPOLLIN | select.EPOLLET


def _deadline_ns(when: float) -> int:
    """The first CLOCK_MONOTONIC nanosecond at which ``time.monotonic()``
    (``ns / 1e9`` rounded to a float, as CPython converts it) is >= ``when``."""
    ns = math.ceil(when * 1e9)  # within a few ns: when * 1e9 is rounded
    while ns / 1e9 < when:
        ns += 1
    while (ns - 1) / 1e9 >= when:
        ns -= 1
    return ns


# ---------------------------------------------------------------- timerfd
# os.timerfd_* exists from 3.13; before it, the same libc calls through ctypes.

class _Timerfd:
    """A non-blocking CLOCK_MONOTONIC timerfd armed at absolute ns deadlines."""

    __slots__ = ("_spec", "_value", "fd")

    if sys.version_info >= (3, 13):

        def __init__(self) -> None:
            self.fd = os.timerfd_create(
                time.CLOCK_MONOTONIC, flags=os.TFD_NONBLOCK | os.TFD_CLOEXEC
            )

        def arm(self, deadline: int) -> None:
            """Expire at ``deadline`` ns (CLOCK_MONOTONIC), once."""
            os.timerfd_settime_ns(self.fd, flags=os.TFD_TIMER_ABSTIME, initial=deadline)

    else:

        def __init__(self) -> None:
            fd = _libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
            if fd < 0:
                e = ctypes.get_errno()
                raise OSError(e, f"timerfd_create: {os.strerror(e)}")
            self.fd = fd
            self._spec = _ITimerSpec()
            self._value = self._spec.it_value

        def arm(self, deadline: int) -> None:
            """Expire at ``deadline`` ns (CLOCK_MONOTONIC), once."""
            v = self._value
            v.tv_sec, v.tv_nsec = divmod(deadline, _NS)
            if _libc.timerfd_settime(self.fd, 1, self._spec, None) < 0:  # TFD_TIMER_ABSTIME
                e = ctypes.get_errno()
                raise OSError(e, f"timerfd_settime: {os.strerror(e)}")

    def close(self, _close: Callable[[int], None] = os.close) -> None:
        if self.fd >= 0:
            _close(self.fd)  # bound early: may run from __del__ at interpreter exit
            self.fd = -1


if sys.version_info < (3, 13):

    class _Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    class _ITimerSpec(ctypes.Structure):
        _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]

    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
    _libc.timerfd_create.restype = ctypes.c_int
    _libc.timerfd_settime.argtypes = [
        ctypes.c_int, ctypes.c_int, ctypes.POINTER(_ITimerSpec), ctypes.POINTER(_ITimerSpec)
    ]
    _libc.timerfd_settime.restype = ctypes.c_int


# ---------------------------------------------------------------- the loop


class EventLoop(asyncio.SelectorEventLoop):
    """``asyncio.SelectorEventLoop`` whose timers wake at their deadline,
    with microsecond precision, and never before it."""

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        self._hrt_tfd: _Timerfd | None = None
        self._hrt_when = -1.0  # the handle deadline the timerfd was last armed for
        super().__init__(selector)
        sel = self._selector  # type: ignore[attr-defined]
        ep = getattr(sel, "_selector", None)
        if isinstance(sel, selectors.EpollSelector) and isinstance(ep, select.epoll):
            try:
                self._hrt_tfd = _Timerfd()
                ep.register(self._hrt_tfd.fd, _EPOLL_EDGE)
            except BaseException:
                self.close()  # the selector, the self-pipe and the timerfd
                raise

    def close(self) -> None:
        super().close()
        tfd = self._hrt_tfd
        if tfd is not None:
            self._hrt_tfd = None
            tfd.close()

    def _run_once(self) -> None:
        """One iteration: asyncio's ``BaseEventLoop._run_once`` with a precise
        wait and a never-early sweep of due timers."""
        lp: Any = self  # asyncio's private state, which typeshed does not declare
        sched_count = len(lp._scheduled)
        if (sched_count > _MIN_SCHEDULED
                and lp._timer_cancelled_count / sched_count > _MIN_CANCELLED_FRACTION):
            # Remove delayed calls that were cancelled if there are many.
            new_scheduled = []
            for handle in lp._scheduled:
                if handle._cancelled:
                    handle._scheduled = False
                else:
                    new_scheduled.append(handle)
            heapq.heapify(new_scheduled)
            lp._scheduled = new_scheduled
            lp._timer_cancelled_count = 0
        else:
            # Remove delayed calls that were cancelled from head of queue.
            while lp._scheduled and lp._scheduled[0]._cancelled:
                lp._timer_cancelled_count -= 1
                handle = heapq.heappop(lp._scheduled)
                handle._scheduled = False

        scheduled = lp._scheduled
        timeout: float | None = None
        if lp._ready or lp._stopping:
            timeout = 0
        elif scheduled:
            when = scheduled[0]._when
            timeout = when - self.time()
            tfd = self._hrt_tfd
            if not timeout > 0:  # due, or a NaN deadline (due at once, as in 3.10-3.12)
                timeout = 0
            elif tfd is None:
                timeout = min(timeout, _MAX_TIMEOUT)
            elif timeout > NEAR:
                timeout = min(timeout - NEAR, _MAX_TIMEOUT)
            else:
                if when != self._hrt_when:
                    tfd.arm(_deadline_ns(when))
                    self._hrt_when = when
                timeout += _BACKSTOP

        event_list = lp._selector.select(timeout)
        lp._process_events(event_list)
        event_list = None  # break cycles when an exception occurs

        # Handle 'later' callbacks that are due: when <= time(), never before.
        if scheduled:
            now_s = self.time()
            ready = lp._ready
            while scheduled:
                handle = scheduled[0]
                if handle._when > now_s:
                    break
                handle = heapq.heappop(scheduled)
                handle._scheduled = False
                ready.append(handle)

        # Run the callbacks ready now, not those they schedule.
        ready = lp._ready
        ntodo = len(ready)
        if lp._debug:
            for _ in range(ntodo):
                handle = ready.popleft()
                if handle._cancelled:
                    continue
                try:
                    lp._current_handle = handle
                    t0 = self.time()
                    handle._run()
                    dt = self.time() - t0
                    if dt >= self.slow_callback_duration:
                        # looked up here, as asyncio does (tests patch them)
                        _base.logger.warning("Executing %s took %.3f seconds",
                                             _base._format_handle(handle), dt)
                finally:
                    lp._current_handle = None
        else:
            for _ in range(ntodo):
                handle = ready.popleft()
                if handle._cancelled:
                    continue
                handle._run()
        handle = None  # break cycles when an exception occurs


def new_event_loop() -> EventLoop:
    """A new precise event loop (not set as the current loop)."""
    return EventLoop()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """The default policy, making ``EventLoop``\\ s."""

    def _loop_factory(self) -> EventLoop:
        return new_event_loop()

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__qualname__}>"


def install() -> None:
    """Make ``asyncio.new_event_loop()`` / ``asyncio.run()`` use the precise
    loop: ``asyncio.set_event_loop_policy(EventLoopPolicy())``."""
    asyncio.set_event_loop_policy(EventLoopPolicy())


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """``asyncio.run(main)`` on a new precise loop, on every supported Python:
    runs the coroutine, cancels what is left, finalizes async generators and
    the default executor, closes the loop. Raises RuntimeError inside a
    running loop and ValueError if ``main`` is not a coroutine."""
    if events._get_running_loop() is not None:
        raise RuntimeError("hrtimer_cffi.aio.run() cannot be called from a running event loop")
    if not coroutines.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    if sys.version_info >= (3, 11):
        with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
            return runner.run(main)
    loop = new_event_loop()  # pragma: no cover (3.10: asyncio.run's own steps)
    try:
        events.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _runners._cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            events.set_event_loop(None)
            loop.close()
