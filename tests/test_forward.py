"""forward / forward_now: the kernel's answers, the states where it is legal,
and the drift rule of periodic timers (ManualClock: exact; real clock: +-2)."""

from __future__ import annotations

import random
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hrtimer_cffi as hrt
from hrtimer_cffi.calls import PeriodicCall
from hrtimer_cffi.testing import ManualClock

INT64_MAX = 2**63 - 1
WAIT = 5.0


def kernel_forward(expires: int, now: int, interval: int) -> tuple[int, int]:
    """kernel/time/hrtimer.c hrtimer_forward(), in Python: (overruns, new expiry)."""
    delta = now - expires
    if delta < 0:
        return 0, expires
    orun = 1
    if delta >= interval:
        orun = delta // interval
        expires += interval * orun
        if expires > now:
            return orun, expires
        orun += 1
    return orun, expires + interval


class Abs(hrt.HasTimer):
    timer = hrt.TimerField(mode=hrt.TimerMode.ABS)

    def run(self, ctx: hrt.CallbackContext) -> None:
        return None


def stopped(expires: int, slack: int = 0) -> hrt.Timer:
    mc = ManualClock()
    obj = Abs()
    tm = mc.attach(obj)
    h = obj.start(expires, slack=slack)
    assert h.cancel() is True
    assert (tm.soft_expires, tm.expires) == (expires, expires + slack)
    assert tm._domain is mc._dom, "the timer keeps its clock's C domain alive"
    return tm


# (soft expiry, slack, now, interval) -> (returned overruns, new hard expiry):
# the kernel's answers (hrtimer_forward) worked out by hand, counted from the
# soft expiry (API.md section 4: a timer inside its slack window has expired;
# with slack 0 this is exactly the kernel's rule).
FORWARD_TABLE = [
    pytest.param(100, 0, 50, 10, 0, 100, id="before-expiry"),
    pytest.param(100, 0, 99, 10, 0, 100, id="1ns-before"),
    pytest.param(100, 0, 100, 10, 1, 110, id="at-expiry"),
    pytest.param(100, 0, 109, 10, 1, 110, id="inside-first-interval"),
    pytest.param(100, 0, 110, 10, 2, 120, id="exactly-one-interval-late"),
    pytest.param(100, 0, 119, 10, 2, 120, id="almost-two-late"),
    pytest.param(100, 0, 1000, 10, 91, 1010, id="far-behind"),
    pytest.param(100, 0, 100, 1, 1, 101, id="interval-1ns"),
    pytest.param(100, 0, -50, 10, 0, 100, id="negative-now"),
    pytest.param(-100, 0, 0, 30, 4, 20, id="negative-expiry"),
    pytest.param(0, 0, 0, 2**62, 1, 2**62, id="huge-interval"),
    pytest.param(100, 5, 99, 10, 0, 105, id="slack:before-soft"),
    pytest.param(100, 5, 100, 10, 1, 115, id="slack:soft-passed-hard-not"),
    pytest.param(100, 5, 105, 10, 1, 115, id="slack:at-hard"),
    pytest.param(100, 5, 130, 10, 4, 145, id="slack:late"),
    pytest.param(100, 50, 120, 10, 3, 180, id="slack-beyond-interval"),
    # Our own rule where the kernel's ktime would overflow: the expiry clamps
    # at int64 max (as ktime_add_safe does) and the count saturates.
    pytest.param(0, 0, INT64_MAX, 1, INT64_MAX, INT64_MAX, id="saturates"),
]


@pytest.mark.parametrize("soft, slack, now, interval, overruns, hard", FORWARD_TABLE)
def test_forward_table(soft: int, slack: int, now: int, interval: int, overruns: int,
                       hard: int) -> None:
    tm = stopped(soft, slack)
    assert tm.forward(now, interval) == overruns
    assert tm.expires == hard
    assert tm.expires - tm.soft_expires == slack, "forward keeps the slack"
    assert not tm.is_active(), "forward never arms"
    if overruns and hard < INT64_MAX:
        assert tm.soft_expires > now


def test_table_agrees_with_the_reference() -> None:
    for p in FORWARD_TABLE[:-1]:
        soft, slack, now, interval, overruns, hard = p.values
        got = kernel_forward(soft, now, interval)
        assert (got[0], got[1] + slack) == (overruns, hard), p.id


@settings(max_examples=300, deadline=None)
@given(
    expires=st.integers(-(10**15), 10**15),
    delta=st.integers(-(10**12), 10**15),
    interval=st.integers(1, 10**12),
)
def test_forward_matches_the_kernel(expires: int, delta: int, interval: int) -> None:
    tm = stopped(expires)
    want = kernel_forward(expires, expires + delta, interval)
    assert (tm.forward(expires + delta, interval), tm.expires) == want


def test_forward_now_uses_the_timers_clock() -> None:
    mc = ManualClock(start=1000)
    obj = Abs()
    tm = mc.attach(obj)
    h = obj.start(1000)
    h.cancel()
    mc.advance(35)                      # nothing queued: nothing runs
    assert tm.now() == 1035
    assert tm.forward_now(10) == 4 and tm.expires == 1040
    assert tm.forward_now(10) == 0


# ---------------------------------------------------------------- legal states


def test_forward_on_a_queued_timer_raises() -> None:
    obj = Abs()
    h = obj.start(hrt.now() + hrt.s(60))
    before = obj.timer.expires
    with pytest.raises(hrt.TimerStateError, match="queued or running"):
        obj.timer.forward(hrt.now() + hrt.s(120), hrt.ms(1))
    with pytest.raises(hrt.TimerStateError, match="queued or running"):
        obj.timer.forward_now(hrt.ms(1))
    assert obj.timer.expires == before and obj.timer.is_queued()
    h.cancel()
    assert obj.timer.forward(before + hrt.ms(1), hrt.ms(1)) == 2


@pytest.mark.parametrize("mode", [hrt.TimerMode.HARD, hrt.TimerMode.SOFT])
def test_forward_of_a_timer_running_elsewhere_raises(mode: hrt.TimerMode) -> None:
    class Blocking(hrt.HasTimer):
        timer = hrt.TimerField(mode=hrt.TimerMode.REL | mode)

        def __init__(self) -> None:
            self.entered = threading.Event()
            self.release = threading.Event()
            self.inside: int | None = None

        def run(self, ctx: hrt.CallbackContext) -> None:
            self.entered.set()
            self.release.wait(WAIT)
            self.inside = ctx.forward_now(hrt.ms(1))   # legal here

    b = Blocking()
    h = b.start(0)
    assert b.entered.wait(WAIT)
    try:
        with pytest.raises(hrt.TimerStateError):
            b.timer.forward_now(hrt.ms(1))
        with pytest.raises(hrt.TimerStateError):
            b.timer.forward(hrt.now(), hrt.ms(1))
    finally:
        b.release.set()
    h.cancel()
    assert b.inside is not None and b.inside >= 1


# ---------------------------------------------------------------- drift rule


class Tick(hrt.HasTimer):
    timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.HARD)

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.returns: list[int] = []

    def run(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart:
        self.returns.append(ctx.forward_now(self.interval))
        return hrt.TimerRestart.RESTART


def test_forward_now_in_callback_gives_the_kernels_counts() -> None:
    rng = random.Random(7)
    mc = ManualClock()
    tick = Tick(10)
    mc.attach(tick)
    h = tick.start(10)
    expires, want = 10, []
    for _ in range(200):
        mc.advance_jump(rng.choice([0, 1, 3, 9, 10, 11, 25, 97]))  # late wake-ups
        now = mc.now()
        if now >= expires:
            n, expires = kernel_forward(expires, now, 10)
            want.append(n)
        assert tick.returns == want
        assert tick.timer.expires == expires
    del h


def test_call_every_drift_rule_is_exact_on_a_manual_clock() -> None:
    rng = random.Random(11)
    mc = ManualClock()
    calls: list[int] = []
    h = mc.call_every(1000, lambda: calls.append(mc.now()))
    p = h.target
    assert isinstance(p, PeriodicCall)
    for _ in range(500):
        mc.advance_jump(rng.randrange(0, 5000))  # late wake-ups
        elapsed = mc.now() // 1000
        assert p.runs + p.overruns == elapsed
        assert h.timer.expires == 1000 * (elapsed + 1)
        assert len(calls) == p.runs
    assert p.runs > 100 and p.overruns > 100
    h.cancel()


def test_call_every_with_slack_calls_once_per_interval() -> None:
    # Run between soft and hard expiry: forwarding from `now` would add
    # nothing and fire again at once; it must move one interval on.
    mc = ManualClock()
    seen: list[int] = []

    def fn() -> None:
        seen.append(mc.now())
        if len(seen) > 10:
            raise RuntimeError("called again and again in one expiry run")

    p = mc.call_every(100, fn, slack=50)  # soft 100, hard 150
    assert mc.advance(120) == 1
    assert seen == [120] and (p.runs, p.overruns) == (1, 0)
    assert (p.timer.soft_expires, p.timer.expires) == (200, 250)
    assert mc.advance(100) == 1 and p.runs == 2
    p.cancel()


@pytest.mark.parametrize("hard", [True, False], ids=["HARD", "SOFT"])
def test_call_every_drift_rule_on_the_real_clock(hard: bool) -> None:
    interval = hrt.ms(1)
    before = hrt.now()
    h = hrt.call_every(interval, lambda: None, hard=hard)
    after = hrt.now()
    time.sleep(0.3)
    h.cancel()                          # waits for a running call: counts are final
    end = hrt.now()
    p = h.target
    total = p.runs + p.overruns
    # Drift-free: the expiry is still on the grid of the first one.
    origin = h.timer.expires - interval * (total + 1)
    assert before <= origin <= after, "the period drifted"
    elapsed = (end - origin) // interval
    assert abs(total - elapsed) <= 2, (p.runs, p.overruns, elapsed)
    assert p.runs >= 30, f"only {p.runs} calls in 300 ms"
