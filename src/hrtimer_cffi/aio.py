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
import heapq
import itertools
import threading
import weakref
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

__all__ = ["Periodic", "periodic", "sleep", "sleep_until"]

_ABS_HARD = TimerMode.ABS | TimerMode.HARD

# A waiter is a heap entry [deadline, seq, future]; future None: discarded
# (its task was cancelled) or already resolved.
_Entry = list[Any]
_seq = itertools.count()


class _ClockQueue:
    """The waiters of one loop on one clock, and the timer that wakes them.

    Invariant: the heap is empty or its top is a live waiter, and the timer is
    armed at that waiter's deadline (or not queued when the heap is empty).
    """

    __slots__ = ("clock", "heap", "live", "timer")

    def __init__(self, clock: ClockId, fd: int) -> None:
        self.clock = clock
        self.heap: list[_Entry] = []
        self.live = 0  # entries whose future is not None
        self.timer = EventfdTimer(mode=_ABS_HARD, clock=clock, fd=fd)

    def add(self, deadline: int, fut: asyncio.Future[None]) -> _Entry:
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
        """Forget a waiter whose task was cancelled (no-op if already popped)."""
        if entry[2] is None:
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
        """Resolve every waiter whose deadline has passed; re-arm for the next."""
        heap = self.heap
        if not heap:
            return
        now = int(_b.now(self.clock))
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            fut = entry[2]
            if fut is None:
                continue
            entry[2] = None
            self.live -= 1
            if not fut.done():
                fut.set_result(None)
        self._settle()

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
        else:
            # -1 (posting right now) leaves one spurious read: harmless.
            self.timer.try_to_cancel()

    def close(self) -> None:
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


class Periodic:
    """Drift-free periodic ticks for ``async for``: deadlines are
    ``first + k * interval`` on ``clock``, never re-based on a late wake-up.

    Each tick yields its overrun count: the intervals skipped because the
    task resumed late (0 when on time), as ``hrtimer_forward() - 1``. So
    ``ticks + overruns`` equals the intervals elapsed since the first deadline.
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

    async def __anext__(self) -> int:
        d = self.next_deadline
        await _wait(asyncio.get_running_loop(), self.clock, d)
        elapsed = int(_b.now(self.clock)) - d
        n = elapsed // self.interval + 1  # intervals to add so the next is ahead
        self.next_deadline = d + n * self.interval
        self.ticks += 1
        self.overruns += n - 1
        return n - 1

    def __repr__(self) -> str:
        return (
            f"<Periodic every {self.interval} ns on {self.clock.name} ticks={self.ticks} "
            f"overruns={self.overruns} next={self.next_deadline}>"
        )


def periodic(
    interval: int, *, first: int | None = None, clock: ClockId = ClockId.MONOTONIC
) -> Periodic:
    """``async for overruns in periodic(interval):`` ticks every ``interval`` ns,
    first at absolute ``first`` (default: one interval from now) on ``clock``.

    Raises TypeError/ValueError for a non-positive interval, a bad ``first``
    or clock.
    """
    i = check_interval("interval", interval)
    c = _clock(clock)
    f = None if first is None else check_ns("first", first)
    return Periodic(i, f, c)


__all__ += ["EventLoop", "EventLoopPolicy", "install", "new_event_loop", "run"]
