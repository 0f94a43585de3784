"""asyncio on hrtimers: precise ``sleep``/``sleep_until`` and a drift-free
``periodic`` async iterator.

How a wake-up reaches the loop::

    C timer (HARD, eventfd-poster builtin)      one per clock used by the loop,
      │ fires on the core's expiry thread,       armed at the earliest pending
      │ no GIL: adds 1 to the loop's eventfd     deadline of that clock
      ▼
    eventfd ──► loop.add_reader callback         one eventfd per event loop
      │ reads it; per clock: pops every waiter whose deadline <= now on that
      │ clock (a heap), resolves its future, re-arms the timer for the next
      ▼
    the awaiting task resumes

No ``call_soon_threadsafe`` per timer and no Python on the expiry thread.
Cancelling an awaiting task removes its waiter; if it was the earliest, the
timer moves to the next deadline or is cancelled, so nothing wakes the loop
for it later. The state of a loop (eventfd, heaps, timers) is held by the loop
alone, through its reader callback: it is released (timers cancelled, eventfd
closed) when the loop closes or is collected, pending waiters or not.
Works with any loop that implements ``add_reader`` (asyncio's selector loops,
uvloop).
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import inspect
import itertools
import threading
import weakref
from asyncio import events as asyncio_events
from collections.abc import Callable
from typing import Any

from . import _binding as _b
from ._units import (
    INT64_MAX,
    ClockId,
    TimerMode,
    check_clock,
    check_interval,
    check_nonneg,
    check_ns,
)

# The precise event loop (aio_loop.py), under the names uvloop uses.
from .aio_loop import EventLoop, EventLoopPolicy, install, new_event_loop, run
from .ctimer import EventfdTimer

__all__ = [
    "Periodic",
    "PeriodicHandle",
    "Tick",
    "TimerHandle",
    "call_at",
    "call_every",
    "call_later",
    "periodic",
    "sleep",
    "sleep_until",
]

_ABS_HARD = TimerMode.ABS | TimerMode.HARD

# A waiter is a heap entry [deadline, seq, waiter]: a future to resolve (a
# sleep) or a TimerHandle to run (call_later/call_at/call_every); None:
# discarded (its task or call was cancelled), resolved or run.
_Entry = list[Any]
_seq = itertools.count()


class _ClockQueue:
    """The waiters of one loop on one clock, and the timer that wakes them.

    Invariant: the heap is empty or its top is a live waiter, and the timer is
    armed at that waiter's deadline (or not queued when the heap is empty).
    """

    __slots__ = ("clock", "closed", "heap", "live", "timer")

    def __init__(self, clock: ClockId, fd: int) -> None:
        self.clock = clock
        self.closed = False
        self.heap: list[_Entry] = []
        self.live = 0  # entries whose future is not None
        self.timer = EventfdTimer(mode=_ABS_HARD, clock=clock, fd=fd)

    def add(self, deadline: int, fut: asyncio.Future[None] | TimerHandle) -> _Entry:
        entry: _Entry = [deadline, next(_seq), fut]
        heapq.heappush(self.heap, entry)
        self.live += 1
        if self.heap[0] is entry:
            try:
                self.timer.start(deadline)
            except BaseException:
                # Not left at the head, where it would keep every later
                # waiter from arming the timer.
                self.discard(entry)
                raise
        return entry

    def discard(self, entry: _Entry) -> None:
        """Forget a waiter whose task or call was cancelled (no-op if already
        popped, or once the loop is closed)."""
        if entry[2] is None or self.closed:
            return
        entry[2] = None
        self.live -= 1
        heap = self.heap
        if heap[0] is entry:
            self._settle()
        elif len(heap) > 64 and len(heap) > 2 * self.live:
            self.heap = [e for e in heap if e[2] is not None]
            heapq.heapify(self.heap)

    def expire(self) -> None:
        """Resolve every waiter whose deadline has passed and run every due
        call (``call_later``/``call_at``/``call_every``) in deadline order;
        re-arm for the next."""
        heap = self.heap
        if not heap:
            return
        now = int(_b.now(self.clock))
        calls: list[TimerHandle] | None = None
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            waiter = entry[2]
            if waiter is None:
                continue
            entry[2] = None
            self.live -= 1
            if isinstance(waiter, TimerHandle):
                waiter._hrt_entry = None
                if calls is None:
                    calls = [waiter]
                else:
                    calls.append(waiter)
            elif not waiter.done():
                waiter.set_result(None)
        self._settle()
        if calls is not None:
            _run_calls(calls)

    def _settle(self) -> None:
        """Restore the invariant: drop discarded entries from the top, then arm
        the timer for the new top or cancel it."""
        heap = self.heap
        if self.live == 0:
            heap.clear()
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
        if heap:
            self.timer.start(heap[0][0])
        elif not self.closed:
            # -1 (posting right now) leaves one spurious read: harmless.
            self.timer.try_to_cancel()

    def close(self) -> None:
        self.closed = True
        self.heap.clear()
        self.live = 0
        self.timer.close()


class _LoopState:
    """One loop's eventfd, registered with ``add_reader``, and its clock queues.

    Only the loop's reader holds it: the waiters' futures hold the loop, so a
    strong reference from anywhere else would keep a closed or dropped loop,
    its eventfd and its C timers alive for good.
    """

    __slots__ = ("__weakref__", "fd", "queues")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.fd = _b.eventfd_new()
        self.queues: dict[ClockId, _ClockQueue] = {}
        try:
            loop.add_reader(self.fd, self._on_wake)
        except BaseException:
            _b.fd_close(self.fd)
            self.fd = -1
            raise

    def queue(self, clock: ClockId) -> _ClockQueue:
        q = self.queues.get(clock)
        if q is None:
            q = self.queues[clock] = _ClockQueue(clock, self.fd)
        return q

    def _on_wake(self) -> None:
        _b.eventfd_read(self.fd)
        for q in self.queues.values():
            q.expire()

    def close(self, _fd_close: Any = _b.fd_close) -> None:
        """The loop is gone: stop the timers, then close the eventfd.
        (_fd_close is bound at definition, for __del__ at interpreter exit.)"""
        for q in self.queues.values():
            q.close()
        self.queues.clear()
        if self.fd >= 0:
            _fd_close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()


_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.ref[_LoopState]] = (
    weakref.WeakKeyDictionary()
)
_states_lock = threading.Lock()


def _new_states_lock() -> None:
    # A child forked while another thread held the lock would wait forever.
    global _states_lock
    _states_lock = threading.Lock()


_b.reset_after_fork(_new_states_lock)


def _state(loop: asyncio.AbstractEventLoop) -> _LoopState:
    ref = _states.get(loop)
    st = None if ref is None else ref()
    if st is None:
        with _states_lock:
            ref = _states.get(loop)
            st = None if ref is None else ref()
            if st is None:
                st = _LoopState(loop)
                ref = _states[loop] = weakref.ref(st)
                weakref.finalize(loop, _close_state, ref)
    return st


def _close_state(ref: weakref.ref[_LoopState]) -> None:
    """The loop is collected: close its state, should anything still hold it."""
    st = ref()
    if st is not None:
        st.close()


def _clock(clock: object) -> ClockId:
    return ClockId.MONOTONIC if clock is ClockId.MONOTONIC else check_clock(clock)


async def _wait(loop: asyncio.AbstractEventLoop, clock: ClockId, deadline: int) -> int:
    late = int(_b.now(clock)) - deadline
    if late >= 0:
        await asyncio.sleep(0)  # a past deadline still yields once, as asyncio.sleep(0)
        return int(_b.now(clock)) - deadline
    q = _state(loop).queue(clock)
    while late < 0:  # more than once only if the clock went back after the expiry
        fut: asyncio.Future[None] = loop.create_future()
        entry = q.add(deadline, fut)
        try:
            await fut
        except BaseException:
            q.discard(entry)
            raise
        late = int(_b.now(clock)) - deadline
    return late


async def sleep_until(deadline: int, clock: ClockId = ClockId.MONOTONIC) -> int:
    """Suspend the task until absolute ``deadline`` ns on ``clock``; return ns
    past it (>= 0). An absolute REALTIME or TAI deadline follows wall-clock
    jumps. A deadline already past yields once and returns.

    Raises TypeError/ValueError for a bad deadline or clock (before waiting),
    RuntimeError outside a running loop.
    """
    d = check_ns("deadline", deadline)
    c = _clock(clock)
    return await _wait(asyncio.get_running_loop(), c, d)


async def sleep(delta: int, clock: ClockId = ClockId.MONOTONIC) -> None:
    """Suspend the task for ``delta`` ns (>= 0). A relative REALTIME sleep
    runs on MONOTONIC. Raises TypeError/ValueError for a bad delta or clock,
    RuntimeError outside a running loop."""
    d = check_nonneg("delta", delta)
    c = _clock(clock)
    if c is ClockId.REALTIME:
        c = ClockId.MONOTONIC
    loop = asyncio.get_running_loop()
    await _wait(loop, c, min(int(_b.now(c)) + d, INT64_MAX))


class Tick(int):
    """What each tick of ``periodic`` yields: an int, the tick's overrun
    count (the intervals skipped because the task resumed late, 0 when on
    time, as ``hrtimer_forward() - 1``), that also tells ``deadline`` (the
    tick's scheduled time, int ns on the clock), ``lateness`` (ns the task
    resumed after it) and ``index`` (1 for the first tick)."""

    deadline: int
    index: int
    lateness: int

    @property
    def overruns(self) -> int:
        """The overrun count (the int itself)."""
        return int(self)

    def __repr__(self) -> str:
        return (
            f"Tick(overruns={int(self)}, index={self.index}, deadline={self.deadline}, "
            f"lateness={self.lateness})"
        )


class Periodic:
    """Drift-free periodic ticks for ``async for``: deadlines are
    ``first + k * interval`` on ``clock``, never re-based on a late wake-up.

    Each tick yields a ``Tick``: its overrun count (an int: the intervals
    skipped because the task resumed late, 0 when on time, as
    ``hrtimer_forward() - 1``) with the tick's ``deadline``, ``lateness``
    and ``index``. So ``ticks + overruns`` equals the intervals elapsed
    since the first deadline.
    """

    __slots__ = ("clock", "interval", "next_deadline", "overruns", "ticks")

    def __init__(self, interval: int, first: int | None, clock: ClockId) -> None:
        self.interval = interval
        self.clock = clock
        self.next_deadline = int(_b.now(clock)) + interval if first is None else first
        self.ticks = 0
        self.overruns = 0

    def __aiter__(self) -> Periodic:
        return self

    async def __anext__(self) -> Tick:
        d = self.next_deadline
        await _wait(asyncio.get_running_loop(), self.clock, d)
        elapsed = int(_b.now(self.clock)) - d
        n = elapsed // self.interval + 1  # intervals to add so the next is ahead
        self.next_deadline = d + n * self.interval
        self.ticks += 1
        self.overruns += n - 1
        tick = Tick(n - 1)
        tick.deadline = d
        tick.index = self.ticks
        tick.lateness = elapsed
        return tick

    def __repr__(self) -> str:
        return (
            f"<Periodic every {self.interval} ns on {self.clock.name} ticks={self.ticks} "
            f"overruns={self.overruns} next={self.next_deadline}>"
        )


def periodic(
    interval: int, *, first: int | None = None, clock: ClockId = ClockId.MONOTONIC
) -> Periodic:
    """``async for tick in periodic(interval):`` ticks every ``interval`` ns,
    first at absolute ``first`` (int ns on ``clock``; default: one interval
    from now). Each ``tick`` is its overrun count (an int) with
    ``deadline``, ``lateness`` and ``index`` (see ``Tick``).

    Raises TypeError/ValueError for a non-positive interval, a bad ``first``
    or clock.
    """
    i = check_interval("interval", interval)
    c = _clock(clock)
    f = None if first is None else check_ns("first", first)
    return Periodic(i, f, c)


# ---------------------------------------------------------------- calls on the loop thread


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    """True on the thread running ``loop``, or while no thread runs it."""
    return asyncio_events._get_running_loop() is loop or not loop.is_running()


class TimerHandle(asyncio.TimerHandle):
    """The handle of ``hrtimer_cffi.aio.call_later`` / ``call_at``: an
    ``asyncio.TimerHandle`` (``cancel()``, ``cancelled()``, ``when()``) whose
    callback runs on the loop's thread, in its context, at ``deadline``.

    ``when()`` is in the loop's time base (``loop.time()``, float seconds),
    as asyncio's; ``deadline`` is the exact int ns on ``clock``.

    ``cancel()`` is final: once it returns, the callback does not run, even
    if its timer had already fired and the loop had not run it yet. From
    another thread it marks the handle cancelled at once and has the loop
    drop its wake-up.
    """

    __slots__ = ("_hrt_entry", "_hrt_inner", "_hrt_loop", "_hrt_queue", "clock", "deadline")

    def __init__(
        self, deadline: int, clock: ClockId, fn: Callable[..., object], args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop, context: contextvars.Context | None,
    ) -> None:
        super().__init__(_loop_time(loop, clock, deadline), fn, args, loop, context=context)
        self.deadline = deadline
        self.clock = clock
        self._hrt_loop = loop
        self._hrt_entry: _Entry | None = None  # queued on the eventfd path
        self._hrt_queue: _ClockQueue | None = None
        self._hrt_inner: asyncio.TimerHandle | None = None  # queued in an EventLoop

    def _hrt_schedule(self) -> None:
        """Queue the wake-up at ``deadline``: a precise EventLoop's own timer
        for MONOTONIC, else the loop's eventfd (a HARD C timer posts it)."""
        loop = self._hrt_loop
        if self.clock is ClockId.MONOTONIC and isinstance(loop, EventLoop):
            self._hrt_inner = loop.call_at(self.deadline / 1e9, self._hrt_fire)
        else:
            q = self._hrt_queue = _state(loop).queue(self.clock)
            self._hrt_entry = q.add(self.deadline, self)

    def _hrt_fire(self) -> None:
        """On the loop's thread, once due: run the callback unless cancelled."""
        self._hrt_inner = None
        if not self._cancelled:
            self._run()

    def cancel(self) -> None:
        if self._cancelled:
            return
        asyncio.Handle.cancel(self)  # (not TimerHandle's: the loop's heap never held it)
        inner, self._hrt_inner = self._hrt_inner, None
        entry, self._hrt_entry = self._hrt_entry, None
        q = self._hrt_queue
        if inner is None and (entry is None or q is None):
            return
        loop = self._hrt_loop
        if _on_loop_thread(loop):
            if inner is not None:
                inner.cancel()
            if entry is not None and q is not None:
                q.discard(entry)
            return
        try:
            if inner is not None:
                loop.call_soon_threadsafe(inner.cancel)
            if entry is not None and q is not None:
                loop.call_soon_threadsafe(q.discard, entry)
        except RuntimeError:
            pass  # the loop closed meanwhile: nothing of it will run

    def _repr_info(self) -> list[str]:
        info: list[str] = super()._repr_info()  # type: ignore[misc]
        info.insert(2 if self._cancelled else 1, f"deadline={self.deadline} ns {self.clock.name}")
        return info


class PeriodicHandle(TimerHandle):
    """The handle of ``hrtimer_cffi.aio.call_every``: ``when()``/``deadline``
    are the next call's; ``runs`` counts calls, ``overruns`` the intervals
    skipped because a call came late (``runs + overruns`` equals the
    intervals elapsed). If the function raises, the loop's exception handler
    gets the error and the calls stop."""

    __slots__ = ("_hrt_args", "_hrt_fn", "interval", "overruns", "runs")

    def __init__(
        self, first: int, interval: int, clock: ClockId, fn: Callable[..., object],
        args: tuple[Any, ...], loop: asyncio.AbstractEventLoop,
        context: contextvars.Context | None,
    ) -> None:
        super().__init__(first, clock, fn, args, loop, context)
        self.interval = interval
        self.runs = 0
        self.overruns = 0
        self._hrt_fn = fn
        self._hrt_args = args
        self._callback = self._hrt_tick  # run by Handle._run in the handle's context
        self._args = ()

    def _hrt_tick(self) -> None:
        self.runs += 1
        self._hrt_fn(*self._hrt_args)  # raises: Handle._run reports it, no next call
        if self._cancelled:
            return
        # Forward from the time fn returned: intervals that passed meanwhile
        # are overruns, not calls to catch up.
        # (At least one: a wall clock set back meanwhile never repeats a deadline.)
        n = max((int(_b.now(self.clock)) - self.deadline) // self.interval + 1, 1)
        self.overruns += n - 1
        self.deadline += n * self.interval
        self._when = _loop_time(self._hrt_loop, self.clock, self.deadline)
        self._hrt_schedule()

    def _repr_info(self) -> list[str]:
        info = super()._repr_info()
        info.append(f"every {self.interval} ns runs={self.runs} overruns={self.overruns}")
        return info


def _loop_time(loop: asyncio.AbstractEventLoop, clock: ClockId, deadline: int) -> float:
    """``deadline`` (ns on ``clock``) as a ``loop.time()`` reading."""
    if clock is ClockId.MONOTONIC and isinstance(loop, asyncio.BaseEventLoop):
        return deadline / 1e9  # its time() is time.monotonic()
    return loop.time() + (deadline - int(_b.now(clock))) / 1e9


def _run_calls(calls: list[TimerHandle]) -> None:
    """Run due calls in order. Should one raise past the loop's exception
    handler (SystemExit, KeyboardInterrupt), the rest run soon after."""
    for i, h in enumerate(calls):
        try:
            h._hrt_fire()
        except BaseException:
            for rest in calls[i + 1:]:
                h._hrt_loop.call_soon(rest._hrt_fire)
            raise


def _check_fn(name: str, fn: object) -> None:
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutine(fn):
        raise TypeError(f"coroutines cannot be used with {name}(); got {fn!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__} {fn!r}")


def _check_context(context: object) -> contextvars.Context | None:
    if context is None or isinstance(context, contextvars.Context):
        return context
    raise TypeError(f"context must be a contextvars.Context or None, got {type(context).__name__}")


def call_at(
    when: int, fn: Callable[..., object], *args: Any, clock: ClockId = ClockId.MONOTONIC,
    context: contextvars.Context | None = None,
) -> TimerHandle:
    """Call ``fn(*args)`` on the running loop's thread at absolute ``when``
    ns on ``clock`` (an absolute REALTIME/TAI time follows wall-clock
    jumps), in ``context`` (default: a copy of the current context), as
    ``loop.call_at`` does but precise to the microsecond on any loop. A time
    already past calls it at the next loop iteration. Returns a
    ``TimerHandle``; dropping it does not cancel the call.

    Raises TypeError/ValueError for a bad ``when``, clock, context, a
    non-callable or coroutine ``fn`` (before anything is queued), and
    RuntimeError outside a running loop.
    """
    w = check_ns("when", when)
    c = _clock(clock)
    _check_fn("call_at", fn)
    ctx = _check_context(context)
    h = TimerHandle(w, c, fn, args, asyncio.get_running_loop(), ctx)
    h._hrt_schedule()
    return h


def call_later(
    delay: int, fn: Callable[..., object], *args: Any,
    context: contextvars.Context | None = None,
) -> TimerHandle:
    """Call ``fn(*args)`` on the running loop's thread ``delay`` ns from now
    (MONOTONIC), in ``context`` (default: a copy of the current context).
    Unlike ``hrtimer_cffi.call_later``, whose callbacks run on the package's
    expiry threads, ``fn`` may touch the loop and its futures. Returns a
    ``TimerHandle``; raises as ``call_at`` does (ValueError for a negative
    delay)."""
    d = check_nonneg("delay", delay)
    _check_fn("call_later", fn)
    ctx = _check_context(context)
    loop = asyncio.get_running_loop()
    h = TimerHandle(min(int(_b.now(ClockId.MONOTONIC)) + d, INT64_MAX), ClockId.MONOTONIC,
                    fn, args, loop, ctx)
    h._hrt_schedule()
    return h


def call_every(
    interval: int, fn: Callable[..., object], *args: Any, first: int | None = None,
    clock: ClockId = ClockId.MONOTONIC, context: contextvars.Context | None = None,
) -> PeriodicHandle:
    """Call ``fn(*args)`` on the running loop's thread every ``interval`` ns,
    first at absolute ``first`` ns on ``clock`` (default: one interval from
    now), drift-free (deadlines ``first + k * interval``; a late call skips
    the intervals that passed, counted in ``overruns``), each call in
    ``context`` (default: a copy of the current context, taken once). If
    ``fn`` raises, the loop's exception handler gets the error and the calls
    stop. Returns a ``PeriodicHandle``; ``cancel()`` stops the calls.

    Raises TypeError/ValueError for a non-positive interval, a bad ``first``,
    clock or context, a non-callable or coroutine ``fn``, and RuntimeError
    outside a running loop.
    """
    i = check_interval("interval", interval)
    c = _clock(clock)
    f = None if first is None else check_ns("first", first)
    _check_fn("call_every", fn)
    ctx = _check_context(context)
    loop = asyncio.get_running_loop()
    if f is None:
        f = min(int(_b.now(c)) + i, INT64_MAX)
    h = PeriodicHandle(f, i, c, fn, args, loop, ctx)
    h._hrt_schedule()
    return h


__all__ += ["PeriodicHandle", "TimerHandle", "call_at", "call_every", "call_later"]
__all__ += ["EventLoop", "EventLoopPolicy", "install", "new_event_loop", "run"]
