"""hrtimer_cffi.aio: sleep / sleep_until / periodic on asyncio (and uvloop if
installed). Wake-ups reach the loop through one eventfd per loop, posted by
C timers; cancelling a task cancels its wake-up."""

from __future__ import annotations

import asyncio
import gc
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

import hrtimer_cffi as hrt
from hrtimer_cffi import _binding, aio

M, RT = hrt.ClockId.MONOTONIC, hrt.ClockId.REALTIME
T = TypeVar("T")


class CountingLoop(asyncio.SelectorEventLoop):
    """A plain selector loop that counts cross-thread wake-ups."""

    threadsafe_calls = 0

    def call_soon_threadsafe(self, *args: Any, **kwargs: Any) -> Any:
        self.threadsafe_calls += 1
        return super().call_soon_threadsafe(*args, **kwargs)


def run(coro_fn: Callable[[], Awaitable[T]], loop: asyncio.AbstractEventLoop | None = None) -> T:
    """Run ``coro_fn()`` on ``loop`` (a fresh CountingLoop by default) and close it."""
    loop = loop or CountingLoop()
    try:
        return loop.run_until_complete(coro_fn())  # type: ignore[arg-type]
    finally:
        loop.close()


def queue_of(loop: asyncio.AbstractEventLoop, clock: hrt.ClockId = M) -> Any:
    return aio._states[loop]().queues[clock]


def live(q: Any) -> int:
    return sum(1 for e in q.heap if e[2] is not None)


@contextmanager
def shifted_realtime(delta: int) -> Iterator[None]:
    _binding.domain_shift_realtime(None, delta)
    try:
        yield
    finally:
        _binding.domain_shift_realtime(None, -delta)


# ---------------------------------------------------------------- sleeping


def test_sleep_until_wakes_at_or_after_the_deadline() -> None:
    async def main() -> list[tuple[int, int, int]]:
        out = []
        for delay in (hrt.us(200), hrt.ms(1), hrt.ms(5)):
            d = hrt.now() + delay
            late = await aio.sleep_until(d)
            out.append((d, late, hrt.now()))
        return out

    for d, late, after in run(main):
        assert isinstance(late, int) and late >= 0
        assert after >= d and late <= after - d
        assert late < hrt.s(1)


def test_sleep_relative_and_past_deadline() -> None:
    async def main() -> tuple[int, object, int]:
        t0 = hrt.now()
        r = await aio.sleep(hrt.ms(3))
        took = hrt.now() - t0
        late = await aio.sleep_until(hrt.now() - hrt.ms(50))  # past: yields once
        return took, r, late

    took, r, late = run(main)
    assert took >= hrt.ms(3) and r is None
    assert late >= hrt.ms(50)


def test_wakeups_come_through_the_loops_eventfd_not_call_soon_threadsafe() -> None:
    loop = CountingLoop()
    fds: list[int] = []

    async def main() -> None:
        await asyncio.gather(*(aio.sleep(hrt.ms(1 + i % 5)) for i in range(50)))
        st = aio._states[loop]()
        fds.append(st.fd)
        # The eventfd is registered with the loop's selector, read by our callback.
        key = loop._selector.get_key(st.fd)  # type: ignore[attr-defined]
        assert key.data[0]._callback == st._on_wake

    run(main, loop)
    assert loop.threadsafe_calls == 0
    assert fds and fds[0] >= 0


def test_many_concurrent_sleepers_resume_in_deadline_order() -> None:
    rng = random.Random(7)
    # Far enough ahead that every sleeper is waiting before the first
    # deadline, even when making 300 tasks takes tens of ms on a loaded CPU.
    base = hrt.now() + hrt.ms(300)
    deadlines = [base + rng.randrange(0, hrt.ms(30)) for _ in range(300)]
    order: list[int] = []
    lates: list[int] = []

    async def one(d: int) -> None:
        lates.append(await aio.sleep_until(d))
        order.append(d)

    async def main() -> None:
        await asyncio.gather(*(one(d) for d in deadlines))

    run(main)
    assert order == sorted(deadlines)
    assert all(x >= 0 for x in lates)


def test_one_timer_per_clock_serves_all_waiters_of_a_loop() -> None:
    loop = CountingLoop()

    async def main() -> tuple[int, int]:
        tasks = [asyncio.create_task(aio.sleep(hrt.ms(10 + i))) for i in range(100)]
        await asyncio.sleep(0)
        q = queue_of(loop)
        n, expires = live(q), q.timer.timer.expires
        await asyncio.gather(*tasks)
        assert live(q) == 0 and not q.timer.timer.is_queued()
        return n, expires

    n, expires = run(main, loop)
    assert n == 100
    assert expires > 0


# ---------------------------------------------------------------- cancellation


def test_cancelling_the_task_cancels_its_wakeup() -> None:
    loop = CountingLoop()

    async def main() -> None:
        task = asyncio.create_task(aio.sleep(hrt.ms(200)))
        await aio.sleep(hrt.ms(5))
        q = queue_of(loop)
        assert q.timer.timer.is_queued() and live(q) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # No leak, no late wake-up: the waiter is gone and the timer is not armed.
        assert q.heap == [] and not q.timer.timer.is_active()
        # Watch the eventfd ourselves for longer than the cancelled sleep.
        st = aio._states[loop]()
        loop.remove_reader(st.fd)
        try:
            await asyncio.sleep(0.3)
            assert _binding.eventfd_read(st.fd) == 0, "the cancelled sleep woke the loop"
        finally:
            loop.add_reader(st.fd, st._on_wake)
        # The loop still wakes for new sleeps after that.
        assert await aio.sleep_until(hrt.now() + hrt.ms(1)) >= 0

    run(main, loop)


def test_cancelling_the_earliest_moves_the_timer_to_the_next() -> None:
    loop = CountingLoop()

    async def main() -> None:
        d1, d2 = hrt.now() + hrt.ms(100), hrt.now() + hrt.ms(150)
        t1 = asyncio.create_task(aio.sleep_until(d1))
        t2 = asyncio.create_task(aio.sleep_until(d2))
        await asyncio.sleep(0)
        q = queue_of(loop)
        assert q.timer.timer.expires == d1
        t1.cancel()
        await asyncio.sleep(0)
        assert q.timer.timer.expires == d2 and q.timer.timer.is_queued()
        assert t1.cancelled()
        assert await t2 >= 0 and hrt.now() >= d2

    run(main, loop)


def test_cancelling_a_later_waiter_keeps_the_earlier() -> None:
    loop = CountingLoop()

    async def main() -> None:
        d1 = hrt.now() + hrt.ms(20)
        t1 = asyncio.create_task(aio.sleep_until(d1))
        t2 = asyncio.create_task(aio.sleep(hrt.s(10)))
        await asyncio.sleep(0)
        t2.cancel()
        await asyncio.sleep(0)
        q = queue_of(loop)
        assert q.timer.timer.expires == d1
        await t1
        assert q.heap == [] and not q.timer.timer.is_queued()

    run(main, loop)


def test_mass_cancellation_compacts_the_heap() -> None:
    loop = CountingLoop()

    async def main() -> None:
        keep = asyncio.create_task(aio.sleep(hrt.ms(300)))
        others = [asyncio.create_task(aio.sleep(hrt.s(5) + i)) for i in range(500)]
        await asyncio.sleep(0)
        q = queue_of(loop)
        assert len(q.heap) == 501
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        assert len(q.heap) < 150 and live(q) == 1
        await keep
        assert q.heap == [] and not q.timer.timer.is_queued()

    run(main, loop)


def test_wait_for_timeout_cancels_the_sleep() -> None:
    loop = CountingLoop()

    async def main() -> None:
        t0 = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(aio.sleep(hrt.s(10)), 0.05)
        assert time.monotonic() - t0 < 2.0
        q = queue_of(loop)
        assert q.heap == [] and not q.timer.timer.is_queued()

    run(main, loop)


# ---------------------------------------------------------------- periodic


def test_periodic_is_drift_free_and_yields_overruns() -> None:
    interval = hrt.ms(2)

    async def main() -> tuple[aio.Periodic, list[int], int, int]:
        p = aio.periodic(interval)
        first = p.next_deadline
        t0 = hrt.now()
        seen = []
        async for overruns in p:
            seen.append(overruns)
            if p.ticks == 5:
                time.sleep(0.010)  # block the loop: the next tick is late
            if p.ticks == 20:
                break
        return p, seen, first, hrt.now() - t0

    p, seen, first, took = run(main)
    assert len(seen) == 20 and all(isinstance(x, int) and x >= 0 for x in seen)
    assert seen[5] >= 4  # 10 ms blocked at 2 ms per tick
    assert p.overruns == sum(seen)
    # Deadlines stay on the grid first + k * interval.
    assert p.next_deadline == first + (p.ticks + p.overruns) * interval
    assert (p.ticks + p.overruns - 1) * interval <= took
    assert "ticks=20" in repr(p)


def test_periodic_with_absolute_first_deadline() -> None:
    async def main() -> tuple[list[int], int]:
        first = hrt.now() + hrt.ms(3)
        out = []
        async for _ in aio.periodic(hrt.ms(1), first=first):
            out.append(hrt.now())
            if len(out) == 3:
                break
        return out, first

    times, first = run(main)
    for k, t in enumerate(times):
        assert t >= first + k * hrt.ms(1)


# ---------------------------------------------------------------- clocks


def test_absolute_realtime_aio_sleep_follows_a_jump() -> None:
    jump = hrt.s(10)

    async def main() -> tuple[float, int]:
        task = asyncio.create_task(aio.sleep_until(hrt.now(RT) + jump, clock=RT))
        rel = asyncio.create_task(aio.sleep(hrt.ms(300), clock=RT))  # on MONOTONIC
        await asyncio.sleep(0.05)
        with shifted_realtime(jump):
            t0 = time.monotonic()
            late = await asyncio.wait_for(task, 2.0)
            took = time.monotonic() - t0
            assert not rel.done()
            await rel
            assert time.monotonic() - t0 >= 0.2
        return took, late

    took, late = run(main)
    assert took < 1.0
    assert 0 <= late < hrt.s(1)


@pytest.mark.parametrize("clock", list(hrt.ClockId), ids=lambda c: c.name)
def test_every_clock(clock: hrt.ClockId) -> None:
    async def main() -> int:
        d = hrt.now(clock) + hrt.ms(2)
        late = await aio.sleep_until(d, clock=clock)
        assert hrt.now(clock) >= d
        return late

    assert run(main) >= 0


# ---------------------------------------------------------------- loops


def test_loops_in_threads_each_get_their_own_state() -> None:
    fds: list[int] = []
    errors: list[BaseException] = []

    async def main() -> None:
        async for _ in aio.periodic(hrt.ms(1)):
            if len(fds) > 100:
                break
            await aio.sleep(hrt.us(300))
            fds.append(aio._states[asyncio.get_running_loop()]().fd)

    def worker() -> None:
        try:
            asyncio.run(main())
        except BaseException as e:  # reported below
            errors.append(e)

    ths = [threading.Thread(target=worker) for _ in range(3)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(10.0)
    assert not errors
    assert len(set(fds)) >= 2  # distinct eventfds (one per loop; numbers may be reused)


def test_state_is_released_with_its_loop() -> None:
    loop = asyncio.new_event_loop()

    async def main() -> None:
        await aio.sleep(hrt.ms(1))
        await aio.sleep_until(hrt.now(RT) + hrt.ms(1), clock=RT)

    loop.run_until_complete(main())
    st = aio._states[loop]()
    timers = [q.timer for q in st.queues.values()]
    assert st.fd >= 0 and len(timers) == 2
    loop.close()
    del loop
    gc.collect()
    assert st.fd == -1 and st.queues == {}
    assert all(t.fileno() == -1 and not t.timer.is_active() for t in timers)


def test_bad_arguments_and_no_running_loop() -> None:
    async def main() -> None:
        with pytest.raises(TypeError):
            await aio.sleep_until(1.5)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await aio.sleep(-1)
        with pytest.raises(ValueError):
            await aio.sleep(1, clock=4)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            aio.periodic(0)
        with pytest.raises(TypeError):
            aio.periodic(hrt.ms(1), first=1.0)  # type: ignore[arg-type]

    run(main)
    coro = aio.sleep(hrt.ms(1))
    with pytest.raises(RuntimeError):
        coro.send(None)
    coro.close()


def test_api_section_8_on_uvloop() -> None:
    uvloop = pytest.importorskip(
        "uvloop", reason="uvloop is not installed (optional; not a dependency)"
    )

    async def main() -> tuple[int, int]:
        late = await aio.sleep_until(hrt.now() + hrt.ms(1))
        n = 0
        async for _ in aio.periodic(hrt.ms(1)):
            n += 1
            if n == 10:
                break
        task = asyncio.create_task(aio.sleep(hrt.s(10)))
        await aio.sleep(hrt.ms(1))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        q = queue_of(asyncio.get_running_loop())
        assert q.heap == [] and not q.timer.timer.is_queued()
        return late, n

    late, n = run(main, uvloop.new_event_loop())
    assert late >= 0 and n == 10
