"""The four clocks for timers and sleeps, and wall-clock jumps.

Kernel rules: a relative REALTIME timer runs on MONOTONIC; an absolute
REALTIME (or TAI) timer follows a wall-clock jump. Jumps are made with the
core's test hook (``ManualClock.shift_realtime``, and
``_binding.domain_shift_realtime(None, delta)`` for the real default domain),
never by setting the machine's clock; every shift of the default domain is
undone in a ``finally``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import hrtimer_cffi as hrt
from hrtimer_cffi import _binding

M, RT, BT, TAI = (
    hrt.ClockId.MONOTONIC,
    hrt.ClockId.REALTIME,
    hrt.ClockId.BOOTTIME,
    hrt.ClockId.TAI,
)
ABS_HARD = hrt.TimerMode.ABS | hrt.TimerMode.HARD
REL_HARD = hrt.TimerMode.REL | hrt.TimerMode.HARD
JUMP = hrt.s(10)


@contextmanager
def shifted_realtime(delta: int) -> Iterator[None]:
    """Jump the default domain's REALTIME/TAI by ``delta``; jump back after."""
    _binding.domain_shift_realtime(None, delta)
    try:
        yield
    finally:
        _binding.domain_shift_realtime(None, -delta)


def wait_until(pred: object, timeout: float) -> float | None:
    """Poll ``pred()`` every 0.5 ms; seconds it took, None on timeout."""
    assert callable(pred)
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(0.0005)
    return time.monotonic() - t0


# ---------------------------------------------------------------- now()


def test_now_reads_each_clock() -> None:
    pairs = [
        (M, time.monotonic_ns),
        (RT, time.time_ns),
        (BT, lambda: time.clock_gettime_ns(time.CLOCK_BOOTTIME)),
        (TAI, lambda: time.clock_gettime_ns(time.CLOCK_TAI)),
    ]
    for clock, ref in pairs:
        a = ref()
        ours = hrt.now(clock)
        b = ref()
        assert a <= ours <= b, clock
    mono = hrt.now(M)
    assert hrt.now(BT) >= mono  # BOOTTIME = MONOTONIC + time suspended


def test_realtime_shift_moves_realtime_and_tai_only() -> None:
    before = {c: hrt.now(c) for c in hrt.ClockId}
    with shifted_realtime(JUMP):
        during = {c: hrt.now(c) for c in hrt.ClockId}
    after = {c: hrt.now(c) for c in hrt.ClockId}
    for c in (RT, TAI):
        assert JUMP <= during[c] - before[c] < JUMP + hrt.s(1)
        assert 0 <= after[c] - before[c] < hrt.s(1)
    for c in (M, BT):
        assert 0 <= during[c] - before[c] < hrt.s(1)


# ---------------------------------------------------------------- every clock works


@pytest.mark.parametrize("clock", list(hrt.ClockId), ids=lambda c: c.name)
def test_c_timers_fire_on_every_clock(clock: hrt.ClockId) -> None:
    rel = hrt.ExpiryCounter(mode=REL_HARD, clock=clock)
    ab = hrt.ExpiryCounter(mode=ABS_HARD, clock=clock)
    ab.start(hrt.now(clock) + hrt.ms(2))
    rel.start(hrt.ms(2))
    assert wait_until(lambda: rel.count == 1 and ab.count == 1, 5.0) is not None
    assert not ab.timer.is_active() and not rel.timer.is_active()


@pytest.mark.parametrize("clock", list(hrt.ClockId), ids=lambda c: c.name)
@pytest.mark.parametrize("hard", [True, False], ids=["hard", "soft"])
def test_python_timers_fire_on_every_clock_never_early(clock: hrt.ClockId, hard: bool) -> None:
    seen: list[int] = []
    done = threading.Event()
    when = hrt.now(clock) + hrt.ms(2)

    def fire() -> None:
        seen.append(hrt.now(clock))
        done.set()

    hrt.call_at(when, fire, clock=clock, hard=hard)
    assert done.wait(5.0)
    assert seen[0] >= when


@pytest.mark.parametrize("clock", list(hrt.ClockId), ids=lambda c: c.name)
def test_sleeps_on_every_clock(clock: hrt.ClockId) -> None:
    t0 = time.monotonic_ns()
    deadline = hrt.now(clock) + hrt.ms(3)
    late = hrt.sleep_until(deadline, clock=clock)
    assert late >= 0 and hrt.now(clock) >= deadline
    assert time.monotonic_ns() - t0 >= hrt.ms(3) - hrt.us(100)  # clocks tick alike
    t0 = time.monotonic_ns()
    hrt.sleep(hrt.ms(3), clock=clock)
    assert time.monotonic_ns() - t0 >= hrt.ms(3)


# ---------------------------------------------------------------- relative REALTIME


def test_relative_realtime_timer_is_placed_on_monotonic() -> None:
    assert hrt.Timer(hrt.TimerMode.REL, RT).clock is M
    assert hrt.Timer(hrt.TimerMode.ABS, RT).clock is RT
    assert hrt.ExpiryCounter(mode=REL_HARD, clock=RT).timer.clock is M

    class Rel(hrt.HasTimer):
        timer = hrt.TimerField(mode=hrt.TimerMode.REL, clock=RT)

        def run(self, ctx: hrt.CallbackContext) -> None:
            pass

    assert Rel().timer.clock is M
    # Only REALTIME moves, as in Linux: relative TAI stays TAI.
    assert hrt.Timer(hrt.TimerMode.REL, TAI).clock is TAI


def test_relative_realtime_timer_ignores_a_jump_on_the_default_domain() -> None:
    c = hrt.ExpiryCounter(mode=REL_HARD, clock=RT)
    ab = hrt.ExpiryCounter(mode=ABS_HARD, clock=RT)
    try:
        t0 = time.monotonic()
        c.start(hrt.ms(400))
        ab.start(hrt.now(RT) + hrt.ms(400))
        with shifted_realtime(JUMP):
            # The absolute one jumps to its expiry; the relative one does not.
            assert wait_until(lambda: ab.count == 1, 2.0) is not None
            time.sleep(0.1)
            assert c.count == 0
            assert c.timer.remaining() > 0
        assert wait_until(lambda: c.count == 1, 5.0) is not None
        assert time.monotonic() - t0 >= 0.4
    finally:
        c.cancel()
        ab.cancel()


def test_relative_realtime_sleep_ignores_a_jump() -> None:
    elapsed: list[float] = []

    def sleeper() -> None:
        t0 = time.monotonic()
        hrt.sleep(hrt.ms(400), clock=RT)
        elapsed.append(time.monotonic() - t0)

    th = threading.Thread(target=sleeper)
    th.start()
    time.sleep(0.1)
    with shifted_realtime(JUMP):
        th.join(5.0)
    assert elapsed and elapsed[0] >= 0.4


def test_relative_realtime_on_manual_clock() -> None:
    mc = hrt.testing.ManualClock(start=hrt.s(100))
    fired: list[int] = []

    class Rel(hrt.HasTimer):
        timer = hrt.TimerField(mode=hrt.TimerMode.REL, clock=RT)

        def run(self, ctx: hrt.CallbackContext) -> None:
            fired.append(ctx.now)

    r = Rel()
    mc.attach(r)
    h = r.start(hrt.ms(10))
    mc.shift_realtime(JUMP)
    assert mc.advance(0) == 0 and not fired
    assert mc.advance(hrt.ms(9)) == 0
    assert mc.advance(hrt.ms(1)) == 1
    assert fired == [hrt.s(100) + hrt.ms(10)]  # on MONOTONIC, not the shifted RT
    del h


# ---------------------------------------------------------------- absolute REALTIME follows jumps


def test_absolute_realtime_follows_a_jump_on_manual_clock() -> None:
    mc = hrt.testing.ManualClock(start=hrt.s(1000))
    fired: list[tuple[str, int]] = []

    def make(clock: hrt.ClockId) -> hrt.HasTimer:
        class Abs(hrt.HasTimer):
            timer = hrt.TimerField(mode=hrt.TimerMode.ABS, clock=clock)

            def run(self, ctx: hrt.CallbackContext) -> None:
                fired.append((clock.name, ctx.now))

        o = Abs()
        mc.attach(o)
        return o

    rt, tai, mono = make(RT), make(TAI), make(M)
    handles = [o.start(mc.now(o.timer.clock) + JUMP) for o in (rt, tai, mono)]
    sets0 = mc.stats()["clock_sets"]
    mc.shift_realtime(JUMP)
    assert mc.stats()["clock_sets"] == sets0 + 1
    assert mc.advance(0) == 2
    assert sorted(n for n, _ in fired) == ["REALTIME", "TAI"]
    assert all(now == hrt.s(1000) + JUMP for _, now in fired)
    assert mono.timer.is_queued()
    # A backward jump delays the absolute REALTIME timer by as much.
    h = rt.start(mc.now(RT) + hrt.ms(100))
    mc.shift_realtime(-JUMP)
    assert mc.advance(hrt.ms(200)) == 0 and rt.timer.is_queued()
    mc.shift_realtime(JUMP)
    assert mc.advance(0) == 1 and not rt.timer.is_active()
    del h, handles


def test_absolute_realtime_timer_follows_a_jump_on_the_default_domain() -> None:
    """An absolute REALTIME timer 10 s ahead fires promptly after a +10 s jump;
    absolute TAI (REALTIME + offset) too; absolute MONOTONIC does not move."""
    rt_c = hrt.ExpiryCounter(mode=ABS_HARD, clock=RT)
    tai_c = hrt.ExpiryCounter(mode=ABS_HARD, clock=TAI)
    mono_c = hrt.ExpiryCounter(mode=ABS_HARD, clock=M)
    py_fired = threading.Event()
    py_seen: list[int] = []
    py_when = hrt.now(RT) + JUMP

    def py_fire() -> None:
        py_seen.append(hrt.now(RT))
        py_fired.set()

    py_h = hrt.call_at(py_when, py_fire, clock=RT)  # SOFT context, Python
    rt_c.start(hrt.now(RT) + JUMP)
    tai_c.start(hrt.now(TAI) + JUMP)
    mono_c.start(hrt.now(M) + JUMP)
    hard0, soft0 = hrt.expiry_stats(hard=True), hrt.expiry_stats(hard=False)
    try:
        time.sleep(0.05)
        assert rt_c.count == tai_c.count == 0 and not py_fired.is_set()
        with shifted_realtime(JUMP):
            took = wait_until(lambda: rt_c.count == 1 and tai_c.count == 1, 2.0)
            assert took is not None and took < 1.0, "REALTIME/TAI timers did not follow"
            assert py_fired.wait(1.0)
            assert py_seen[0] >= py_when
            time.sleep(0.05)
            assert mono_c.count == 0 and mono_c.timer.is_queued()
        assert hrt.expiry_stats(hard=True)["clock_sets"] >= hard0["clock_sets"] + 2
        assert hrt.expiry_stats(hard=False)["clock_sets"] >= soft0["clock_sets"] + 2
    finally:
        for c in (rt_c, tai_c, mono_c):
            c.cancel()
        py_h.cancel()


def test_backward_jump_delays_an_absolute_realtime_timer_on_the_default_domain() -> None:
    c = hrt.ExpiryCounter(mode=ABS_HARD, clock=RT)
    try:
        c.start(hrt.now(RT) + hrt.ms(100))
        with shifted_realtime(-JUMP):
            time.sleep(0.4)
            assert c.count == 0 and c.timer.is_queued()
            assert c.timer.remaining() > hrt.s(9)
        took = wait_until(lambda: c.count == 1, 2.0)
        assert took is not None and took < 1.0
    finally:
        c.cancel()


def test_absolute_realtime_sleep_follows_a_jump() -> None:
    result: list[int] = []

    def sleeper() -> None:
        result.append(hrt.sleep_until(hrt.now(RT) + JUMP, clock=RT))

    th = threading.Thread(target=sleeper)
    th.start()
    try:
        time.sleep(0.1)
        assert th.is_alive()
        with shifted_realtime(JUMP):
            t0 = time.monotonic()
            th.join(2.0)
            took = time.monotonic() - t0
            assert not th.is_alive(), "the REALTIME sleep did not follow the jump"
    finally:
        th.join()
    assert took < 1.0
    assert 0 <= result[0] < hrt.s(1)  # measured on the jumped clock


def test_absolute_realtime_sleep_survives_a_backward_jump() -> None:
    result: list[int] = []
    deadline = hrt.now(RT) + hrt.ms(100)

    def sleeper() -> None:
        result.append(hrt.sleep_until(deadline, clock=RT))

    th = threading.Thread(target=sleeper)
    with shifted_realtime(-JUMP):
        th.start()
        time.sleep(0.3)
        assert th.is_alive(), "the sleep ended before its (moved) deadline"
    th.join(2.0)
    assert not th.is_alive() and result[0] >= 0
