"""hrtimer_cffi.aio's precise event loop: every asyncio timer wakes at its
deadline (never before it, not whole milliseconds after it), everything else
is the stock selector loop, and closing it releases what it made."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

import hrtimer_cffi as hrt
from hrtimer_cffi import aio_loop

T = TypeVar("T")
N = 200  # wake-ups per entry point
P50_BOUND = 300e-6  # s: the stock loop's p50 is about 500 us (epoll rounds up to 1 ms)


def on_loop(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    loop = hrt.aio.new_event_loop()
    try:
        return loop.run_until_complete(make())
    finally:
        loop.close()


def durations(n: int = N, seed: int = 1, lo: float = 100e-6, hi: float = 1.1e-3) -> list[float]:
    """Delays spread over a millisecond, so epoll's rounding would show."""
    rnd = random.Random(seed)
    return [rnd.uniform(lo, hi) for _ in range(n)]


def check_lateness(late: list[float]) -> None:
    """Never early (every value >= 0); p50 well under a millisecond."""
    assert len(late) >= N // 2, late
    early = [x for x in late if x < 0]
    assert not early, f"{len(early)} wake-ups early, e.g. {early[:5]}"
    late = sorted(late)
    p50 = late[len(late) // 2]
    assert p50 < P50_BOUND, f"p50 lateness {p50 * 1e6:.0f} us (all: {late[::20]})"


# ---------------------------------------------------------------- entry points


def test_run_uses_the_precise_loop_and_returns_the_result() -> None:
    async def main() -> Any:
        await asyncio.sleep(0.001)
        return type(asyncio.get_running_loop())

    assert hrt.aio.run(main()) is hrt.aio.EventLoop
    assert hrt.aio.EventLoop is aio_loop.EventLoop


def test_run_finalizes_like_asyncio_run() -> None:
    closed: list[str] = []

    async def agen() -> Any:
        try:
            yield 1
            yield 2
        finally:
            closed.append("agen")

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            closed.append("task")

    async def main() -> asyncio.AbstractEventLoop:
        g = agen()
        assert await g.__anext__() == 1
        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    loop = hrt.aio.run(main(), debug=True)
    assert sorted(closed) == ["agen", "task"]
    assert loop.is_closed()


def test_run_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="coroutine was expected"):
        hrt.aio.run(42)  # type: ignore[arg-type]

    async def inner() -> None:
        coro = asyncio.sleep(0)
        try:
            with pytest.raises(RuntimeError, match="running event loop"):
                hrt.aio.run(coro)
        finally:
            coro.close()

    hrt.aio.run(inner())


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is 3.12+")
def test_asyncio_run_with_loop_factory() -> None:
    async def main() -> Any:
        return type(asyncio.get_running_loop())

    assert asyncio.run(main(), loop_factory=hrt.aio.new_event_loop) is hrt.aio.EventLoop  # type: ignore[call-arg]


def test_policy_and_install() -> None:
    old = asyncio.get_event_loop_policy()
    try:
        asyncio.set_event_loop_policy(hrt.aio.EventLoopPolicy())
        loop = asyncio.new_event_loop()
        assert type(loop) is hrt.aio.EventLoop
        loop.close()
        asyncio.set_event_loop_policy(None)
        hrt.aio.install()
        assert isinstance(asyncio.get_event_loop_policy(), hrt.aio.EventLoopPolicy)

        async def main() -> Any:
            return type(asyncio.get_running_loop())

        assert asyncio.run(main()) is hrt.aio.EventLoop
    finally:
        asyncio.set_event_loop_policy(old)


def test_deadline_ns_is_the_first_nanosecond_time_monotonic_reaches() -> None:
    """The timerfd's deadline for a handle due at ``when`` (float seconds):
    from that CLOCK_MONOTONIC nanosecond on, ``time.monotonic() >= when``,
    and not one nanosecond earlier."""
    rnd = random.Random(9)
    for _ in range(50_000):
        base = rnd.choice([1e-3, 1.0, 1e3, 1e5, 1e6, 1e7, 3e7, 1e9])
        when = rnd.uniform(base, 2 * base)
        ns = aio_loop._deadline_ns(when)
        assert ns / 1e9 >= when and (ns - 1) / 1e9 < when, when
    ns = time.monotonic_ns()
    assert aio_loop._deadline_ns(ns / 1e9) <= ns


def test_infinite_and_nan_deadlines() -> None:
    """An infinite deadline never runs and does not busy the loop; a NaN one
    is due at once (as asyncio 3.10-3.12 treat it; 3.13's stock loop raises)."""
    loop = hrt.aio.new_event_loop()
    try:
        ran: list[str] = []
        loop.call_at(float("inf"), ran.append, "inf")
        loop.call_at(float("nan"), ran.append, "nan")
        c0 = time.process_time()
        loop.run_until_complete(asyncio.sleep(0.2))
        assert ran == ["nan"]
        assert time.process_time() - c0 < 0.1  # waited, did not spin
    finally:
        loop.close()


def test_time_is_monotonic_seconds() -> None:
    loop = hrt.aio.new_event_loop()
    try:
        a = time.monotonic()
        b = loop.time()
        c = time.monotonic()
        assert a <= b <= c
    finally:
        loop.close()


# ---------------------------------------------------------------- never early, not late


def test_sleep_never_early_and_precise() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        late = []
        for d in durations():
            t0 = loop.time()
            await asyncio.sleep(d)
            # sleep's deadline is loop.time() + d taken after t0: t1 >= t0 + d
            late.append(loop.time() - (t0 + d))
        return late

    check_lateness(on_loop(main))


def test_call_at_never_early_and_precise() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        late: list[float] = []
        for d in durations(seed=2):
            done = loop.create_future()
            when = loop.time() + d
            loop.call_at(when, lambda w=when, f=done: (late.append(loop.time() - w),
                                                       f.set_result(None)))
            await done
        return late

    check_lateness(on_loop(main))


def test_call_later_never_early_and_precise() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        late: list[float] = []
        for d in durations(seed=3):
            done = loop.create_future()
            box: list[asyncio.TimerHandle] = []

            def fire(f: asyncio.Future[None] = done, b: list[asyncio.TimerHandle] = box) -> None:
                late.append(loop.time() - b[0].when())
                f.set_result(None)

            box.append(loop.call_later(d, fire))
            await done
        return late

    check_lateness(on_loop(main))


def test_wait_for_never_early_and_precise() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        late = []
        for d in durations(seed=4):
            t0 = loop.time()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(loop.create_future(), d)
            late.append(loop.time() - (t0 + d))
        return late

    check_lateness(on_loop(main))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")
def test_timeout_never_early_and_precise() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        late = []
        for i, d in enumerate(durations(seed=5)):
            t0 = loop.time()
            with pytest.raises(TimeoutError):
                if i % 2:
                    async with asyncio.timeout(d):  # type: ignore[attr-defined]
                        await loop.create_future()
                else:
                    async with asyncio.timeout_at(t0 + d):  # type: ignore[attr-defined]
                        await loop.create_future()
            late.append(loop.time() - (t0 + d))
        return late

    check_lateness(on_loop(main))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is 3.11+")
def test_taskgroup_deadlines_never_early_and_precise() -> None:
    async def sleeper(d: float, late: list[float]) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(d)
        late.append(loop.time() - (t0 + d))

    async def main() -> list[float]:
        late: list[float] = []
        ds = durations(seed=6, lo=100e-6, hi=5e-3)
        for k in range(0, N, 20):
            async with asyncio.TaskGroup() as tg:  # type: ignore[attr-defined]
                for d in ds[k:k + 20]:
                    tg.create_task(sleeper(d, late))
        return late

    check_lateness(on_loop(main))


def test_far_deadlines_are_precise_too() -> None:
    """Deadlines beyond NEAR first wait with epoll's timeout, then the timerfd."""
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        late = []
        for d in durations(n=30, seed=7, lo=4e-3, hi=12e-3):
            t0 = loop.time()
            await asyncio.sleep(d)
            late.append(loop.time() - (t0 + d))
        return late

    # Twice at most: a load burst on a shared 2-CPU machine can push one
    # run's median past the bound; a late mechanism is late both times.
    for _ in range(2):
        late = on_loop(main)
        assert min(late) >= 0, late
        if sorted(late)[len(late) // 2] < P50_BOUND:
            break
    assert sorted(late)[len(late) // 2] < P50_BOUND, late


def test_sweep_never_runs_a_timer_early_whatever_clock_resolution() -> None:
    """asyncio's sweep runs handles due before time() + clock_resolution; a
    coarse clock resolution (15.6 ms on Windows) then runs timers early when an
    I/O event wakes the loop first. This loop compares with time() alone."""
    loop = hrt.aio.new_event_loop()
    r, w = socket.socketpair()
    try:
        loop._clock_resolution = 0.05  # type: ignore[attr-defined]
        seen: list[float] = []
        when = loop.time() + 0.02
        loop.call_at(when, lambda: seen.append(loop.time() - when))
        loop.add_reader(r, r.recv, 1)
        loop.call_later(0.005, w.send, b"x")  # an I/O wake-up 15 ms before the timer

        async def wait() -> None:
            while not seen:
                await asyncio.sleep(0.001)

        loop.run_until_complete(wait())
        assert seen[0] >= 0, f"ran {-seen[0] * 1e3:.3f} ms early"
    finally:
        loop.close()
        r.close()
        w.close()


# ---------------------------------------------------------------- cost


class ArmCounter:
    """Stands in for the loop's timerfd; records the handle deadline (the
    earliest scheduled) each arm is for."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop: Any = loop
        self._tfd = self._loop._hrt_tfd
        assert self._tfd is not None
        self.fd = self._tfd.fd
        self.whens: list[float] = []
        self._loop._hrt_tfd = self

    def arm(self, deadline: int) -> None:
        self.whens.append(self._loop._scheduled[0].when())
        self._tfd.arm(deadline)

    def close(self) -> None:
        self._tfd.close()


def test_no_arm_without_a_near_deadline() -> None:
    """Iterations with no timer, or only timers beyond NEAR, arm nothing."""
    loop = hrt.aio.new_event_loop()
    arms = ArmCounter(loop)

    async def main() -> None:
        for _ in range(200):
            await asyncio.sleep(0)
        h = loop.call_later(10.0, lambda: None)
        for _ in range(200):
            await asyncio.sleep(0)
        h.cancel()

    try:
        loop.run_until_complete(main())
        assert arms.whens == []
    finally:
        loop.close()


def test_arm_once_per_distinct_earliest_deadline() -> None:
    """While a near deadline is pending, I/O wakes the loop every iteration (a
    socket that the loop's own reader keeps writing to): no re-arm. A new
    earliest deadline arms once; when it has run, the previous one again."""
    loop = hrt.aio.new_event_loop()
    arms = ArmCounter(loop)
    r, w = socket.socketpair()
    r.setblocking(False)
    fired: list[str] = []
    reads = 0
    a = loop.time() + 0.0029
    b = a - 0.002
    bs: list[float] = []

    def ping() -> None:
        nonlocal reads
        r.recv(1)
        reads += 1
        if reads == 3:
            bs.append(max(b, loop.time() + 0.0002))
            loop.call_at(bs[0], fire, "b")
        if len(fired) < 3:
            w.send(b"x")

    done = loop.create_future()

    def fire(name: str) -> None:
        fired.append(name)
        if len(fired) == 3:
            done.set_result(None)

    async def main() -> None:
        loop.call_at(a, fire, "a")
        loop.call_at(a + 0.0025, fire, "a2")
        loop.add_reader(r, ping)
        w.send(b"x")
        await done

    try:
        loop.run_until_complete(main())
        assert sorted(fired) == ["a", "a2", "b"]
        assert reads >= 5  # the loop went round while waiting
        # Each arm is for a new earliest deadline: a, b, a again, a2; a stall
        # of the machine may make one of them due before its arm (fewer arms).
        whens = arms.whens
        assert 2 <= len(whens) <= 4 and whens[0] == a, whens
        assert all(x != y for x, y in itertools.pairwise(whens)), whens
        assert set(whens) <= {a, a + 0.0025, *bs}, whens
    finally:
        loop.close()
        r.close()
        w.close()


# ---------------------------------------------------------------- release, fork


def open_fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


def test_close_releases_every_descriptor() -> None:
    gc.collect()
    before = open_fds()
    for _ in range(20):
        loop = hrt.aio.new_event_loop()
        tfd = loop._hrt_tfd.fd  # type: ignore[attr-defined]

        async def main() -> None:
            asyncio.get_running_loop().call_later(0.002, lambda: None)  # left armed
            await asyncio.sleep(0.0005)

        loop.run_until_complete(main())
        loop.close()
        loop.close()  # idempotent
        with pytest.raises(OSError):
            os.fstat(tfd)
    gc.collect()
    assert open_fds() == before


def test_a_loop_that_fails_to_start_releases_its_descriptors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No timerfd (e.g. EMFILE): the error reaches the caller and the
    selector and self-pipe made before it are closed, not left to the GC."""
    def no_timerfd() -> None:
        raise OSError(24, "Too many open files")

    gc.collect()
    before = open_fds()
    monkeypatch.setattr(aio_loop, "_Timerfd", no_timerfd)
    with pytest.raises(OSError, match="Too many open files") as info:
        hrt.aio.new_event_loop()
    assert open_fds() == before  # while the traceback still holds the loop
    del info


def test_unclosed_loop_releases_its_timerfd_when_collected() -> None:
    gc.collect()
    before = open_fds()
    loop = hrt.aio.new_event_loop()
    assert open_fds() != before
    with pytest.warns(ResourceWarning):
        del loop
        gc.collect()
    assert open_fds() == before


def test_other_selectors_keep_the_stock_wait_but_never_run_early() -> None:
    loop = hrt.aio.EventLoop(selectors.PollSelector())
    try:
        assert loop._hrt_tfd is None  # type: ignore[attr-defined]

        async def main() -> list[float]:
            late = []
            for d in durations(n=20, seed=8):
                t0 = loop.time()
                await asyncio.sleep(d)
                late.append(loop.time() - (t0 + d))
            return late

        assert min(loop.run_until_complete(main())) >= 0
    finally:
        loop.close()


def test_loop_made_in_a_fork_child_works() -> None:
    script = textwrap.dedent(
        """
        import asyncio, os, signal, time
        import hrtimer_cffi as hrt

        async def lateness(n):
            loop = asyncio.get_running_loop()
            late = []
            for i in range(n):
                d = 0.0002 + 0.0009 * (i % 7) / 7
                t0 = loop.time()
                await asyncio.sleep(d)
                late.append(loop.time() - (t0 + d))
            return sorted(late)

        parent = hrt.aio.new_event_loop()
        parent.run_until_complete(lateness(20))
        pid = os.fork()
        if pid == 0:
            late = hrt.aio.run(lateness(100))
            os._exit(0 if late[0] >= 0 and late[50] < 300e-6 else 1)
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise SystemExit("child hung")
            time.sleep(0.01)
        assert os.waitstatus_to_exitcode(status) == 0, status
        late = parent.run_until_complete(lateness(50))   # the parent's loop still works
        assert late[0] >= 0 and late[25] < 300e-6, late
        parent.close()
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", script],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


# ---------------------------------------------------------------- the rest is stock


def test_cpython_asyncio_suite_short(tmp_path: Any) -> None:
    """CPython's own tests of the epoll loop, wait_for and timeouts pass on this
    loop exactly as on the stock one (the full comparison: make asyncio-suite)."""
    runner = Path(__file__).parent / "asyncio_suite" / "run_stdlib_asyncio.py"
    out = tmp_path / "suite.json"
    proc = subprocess.run([sys.executable, str(runner), "--short", "--rerun", "2",
                           "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    for name, m in doc["modules"].items():
        assert not m["stock"]["crashed"] and not m["hrt"]["crashed"], (name, proc.stdout)
        assert m["hrt"]["made"]["loops"] > 0, f"{name}: the tests made none of our loops"
    # 88 tests on 3.10 (no test_timeouts there), 120 from 3.11 on
    assert doc["totals"]["stock"] > 80 and not doc["regressions"], proc.stdout



def run_main(main: Callable[[], Awaitable[T]]) -> T:
    async def wrap() -> T:
        return await main()

    return hrt.aio.run(wrap())


def test_sockets_echo() -> None:
    async def main() -> bytes:
        async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(await r.readline())
            await w.drain()
            w.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"hello\n")
            got = await asyncio.wait_for(r.readline(), 10)
            w.close()
            await w.wait_closed()
        return got

    assert run_main(main) == b"hello\n"


def test_subprocess_signal_executor() -> None:
    async def main() -> tuple[bytes, int, int]:
        loop = asyncio.get_running_loop()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('child')", stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, signal.SIGUSR1)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            sig = await asyncio.wait_for(got, 10)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)
        x = await loop.run_in_executor(None, sum, [1, 2, 3])
        return out, sig, x

    out, sig, x = run_main(main)
    assert out.strip() == b"child" and sig == signal.SIGUSR1 and x == 6


def test_debug_mode_warns_of_slow_callbacks(caplog: pytest.LogCaptureFixture) -> None:
    loop = hrt.aio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01
    try:
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            loop.call_later(0.001, time.sleep, 0.03)
            loop.run_until_complete(asyncio.sleep(0.05))
        assert any("Executing" in r.getMessage() and "took" in r.getMessage()
                   for r in caplog.records), caplog.records
    finally:
        loop.close()


def test_hrt_aio_sleep_until_runs_on_it() -> None:
    """hrt.aio's own eventfd-driven sleeps work on this loop as on any."""
    async def main() -> int:
        late = 0
        for _ in range(20):
            late = max(late, await hrt.aio.sleep_until(hrt.now() + hrt.us(300)))
        return late

    assert 0 <= on_loop(main) < 1_000_000_000


def test_cancelled_timers_are_purged_as_in_asyncio() -> None:
    """Many cancelled handles are swept out of the heap (asyncio's rule)."""
    loop = hrt.aio.new_event_loop()
    try:
        hs = [loop.call_later(100 + i, lambda: None) for i in range(300)]
        for h in hs[:250]:
            h.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        assert len(loop._scheduled) == 50  # type: ignore[attr-defined]
        for h in hs[250:]:
            h.cancel()
    finally:
        loop.close()


def test_callback_exception_goes_to_the_handler() -> None:
    loop = hrt.aio.new_event_loop()
    seen: list[Any] = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx["exception"]))
    try:
        def boom() -> None:
            raise KeyError("x")

        loop.call_later(0.001, boom)
        loop.run_until_complete(asyncio.sleep(0.005))
        assert len(seen) == 1 and isinstance(seen[0], KeyError)
    finally:
        loop.close()

