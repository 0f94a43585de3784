"""The peers: the standard library's ways to wake up periodically. They know
CLOCK_MONOTONIC only, so they always run on it."""

from __future__ import annotations

import asyncio
import os
import sched
import threading
import time
from collections.abc import Callable
from typing import Any

from .._units import now
from .plan import NS_PER_S, Measurement, Periodic, Plan, wait_for

__all__ = [
    "asyncio_call_at_chain",
    "peer_clock_offset",
    "run_asyncio",
    "run_os_timerfd",
    "run_sched",
    "run_threading_timer",
    "run_time_sleep",
]


def peer_clock_offset() -> tuple[int, str]:
    """ns to add to a ``time.monotonic()`` reading to get ``hrt.now()``.

    On Linux both read CLOCK_MONOTONIC, so it is 0; this is checked (the
    implementation ``time`` reports, and the readings agree within 1 ms).
    Elsewhere the measured offset is used.
    """
    impl = time.get_clock_info("monotonic").implementation
    best = None
    for _ in range(5):
        a = now()
        m = time.monotonic_ns()
        b = now()
        if best is None or b - a < best[0]:
            best = (b - a, (a + b) // 2 - m)
    assert best is not None
    offset = best[1]
    if "CLOCK_MONOTONIC" in impl and "RAW" not in impl and abs(offset) < 1_000_000:
        return 0, f"time.monotonic() is {impl}, as hrt.now(): offset {offset} ns (taken as 0)"
    return offset, f"time.monotonic() is {impl}: measured offset {offset} ns applied"


def run_time_sleep(plan: Plan) -> Measurement:
    # time.sleep takes a relative delay: no clock conversion is needed.
    tsleep = time.sleep
    loop = Periodic(plan, now() + plan.interval)
    while not loop.done:
        d = loop.next - now()
        if d > 0:
            tsleep(d / NS_PER_S)
        loop.record(now())
    return loop.measurement()


def run_os_timerfd(plan: Plan) -> Measurement:
    """A CLOCK_MONOTONIC ``os.timerfd_create`` (Python 3.13+) armed absolute
    at each expiry and read in a blocking loop."""
    if not hasattr(os, "timerfd_create"):
        raise ImportError("os.timerfd_create needs Python 3.13")
    create: Any = getattr(os, "timerfd_create")  # noqa: B009 (3.13+ only)
    settime: Any = getattr(os, "timerfd_settime_ns")  # noqa: B009
    fd = create(time.CLOCK_MONOTONIC)
    try:
        loop = Periodic(plan, now() + plan.interval)
        while not loop.done:
            settime(fd, flags=getattr(os, "TFD_TIMER_ABSTIME"), initial=loop.next)  # noqa: B009
            os.read(fd, 8)
            loop.record(now())
        return loop.measurement()
    finally:
        os.close(fd)


def run_threading_timer(plan: Plan) -> Measurement:
    # The timers' own threads record; progress comes from this thread.
    loop = Periodic(plan, now() + plan.interval, report=False)
    done = threading.Event()
    stop = threading.Event()
    timers: list[threading.Timer] = []

    def arm() -> None:
        tm = threading.Timer((loop.next - now()) / NS_PER_S, fire)
        tm.daemon = True
        timers[:] = [tm]
        tm.start()

    def fire() -> None:
        loop.record(now())
        if loop.done:
            done.set()
        elif not stop.is_set():
            arm()

    arm()
    try:
        finished = wait_for(done.wait, lambda: len(loop.samples), plan)
    finally:
        stop.set()
        for tm in list(timers):
            tm.cancel()
    return loop.measurement(finished)


def run_asyncio(plan: Plan) -> Measurement:
    return asyncio_call_at_chain(plan, asyncio.new_event_loop)


def asyncio_call_at_chain(plan: Plan, new_loop: Callable[[], asyncio.AbstractEventLoop]
                          ) -> Measurement:
    """A ``loop.call_at`` chain on a loop from ``new_loop`` (its ``time()`` is
    ``time.monotonic()``)."""
    off = plan.peer_offset
    loop = Periodic(plan, now() + plan.interval)
    ev = new_loop()

    def fire() -> None:
        loop.record(now())
        if loop.done:
            ev.stop()
        else:
            ev.call_at((loop.next - off) / NS_PER_S, fire)

    try:
        ev.call_at((loop.next - off) / NS_PER_S, fire)
        ev.run_forever()
    finally:
        ev.close()
    return loop.measurement()


def run_sched(plan: Plan) -> Measurement:
    off = plan.peer_offset
    loop = Periodic(plan, now() + plan.interval)
    s = sched.scheduler(time.monotonic, time.sleep)

    def action() -> None:
        loop.record(now())
        if not loop.done:
            s.enterabs((loop.next - off) / NS_PER_S, 1, action)

    s.enterabs((loop.next - off) / NS_PER_S, 1, action)
    s.run()
    return loop.measurement()
