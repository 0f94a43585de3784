"""Slack coalescing: timers whose [soft, hard] windows overlap are served by one
wake-up of the expiry thread, and ``hrt.expiry_stats()`` shows it.

Other timers of the process may run during a measurement (the default domain
is shared), so each bound allows one wake-up per foreign callback counted in
the same window: ``wakeups - (timers_run - ours)`` is what ours cost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import hrtimer_cffi as hrt

ABS_HARD = hrt.TimerMode.ABS | hrt.TimerMode.HARD


def wait_until(pred: Callable[[], bool], timeout: float) -> bool:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.001)
    return True


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in before}


def test_1000_c_timers_over_1ms_with_1ms_slack_take_a_handful_of_wakeups() -> None:
    n = 1000
    counters = [hrt.ExpiryCounter(mode=ABS_HARD) for _ in range(n)]
    before = hrt.expiry_stats(hard=True)
    base = hrt.now() + hrt.ms(100)  # arming all of them takes far less
    for i, c in enumerate(counters):
        c.start(base + i * hrt.ms(1) // n, slack=hrt.ms(1))
    assert wait_until(lambda: all(c.count == 1 for c in counters), 10.0)
    d = delta(before, hrt.expiry_stats(hard=True))
    foreign = d["timers_run"] - n
    assert foreign >= 0
    ours = d["wakeups"] - foreign
    # The windows all contain [base + 1 ms, base + 1 ms]: one wake-up serves
    # them; allow a few for an expiry thread that is preempted mid-run.
    assert ours <= 10, d
    assert d["timers_run"] >= n


def test_windows_that_do_not_overlap_take_one_wakeup_each() -> None:
    """The control: the same statistics count one wake-up per timer when the
    windows are apart, so the bound above measures coalescing."""
    n = 5
    counters = [hrt.ExpiryCounter(mode=ABS_HARD) for _ in range(n)]
    before = hrt.expiry_stats(hard=True)
    base = hrt.now() + hrt.ms(20)
    for i, c in enumerate(counters):
        c.start(base + i * hrt.ms(15))
    assert wait_until(lambda: all(c.count == 1 for c in counters), 10.0)
    d = delta(before, hrt.expiry_stats(hard=True))
    assert d["wakeups"] >= n, d
    assert d["timers_run"] >= n


def test_python_soft_timers_coalesce_too() -> None:
    n = 200
    done = threading.Semaphore(0)
    soft_before = hrt.expiry_stats(hard=False)
    base = hrt.now() + hrt.ms(100)
    handles = [
        hrt.call_at(base + i * hrt.ms(1) // n, done.release, slack=hrt.ms(1)) for i in range(n)
    ]
    for _ in range(n):
        assert done.acquire(timeout=10.0)
    d = delta(soft_before, hrt.expiry_stats(hard=False))
    foreign = d["timers_run"] - n
    assert foreign >= 0
    assert d["wakeups"] - foreign <= 10, d
    del handles


def test_slack_lets_a_timer_fire_late_within_its_window_only() -> None:
    """A lone timer with slack fires in [soft, hard] (it may use the slack), and
    its stored expiries show the window."""
    rec = hrt.LatencyRecorder(1, mode=ABS_HARD)
    soft = hrt.now() + hrt.ms(5)
    rec.start(soft, slack=hrt.ms(2))
    assert rec.timer.soft_expires == soft
    assert rec.timer.expires == soft + hrt.ms(2)
    assert rec.wait(5.0)
    # The recorder measures against the hard expiry: >= -slack, never earlier.
    (late,) = rec.samples()
    assert late >= -hrt.ms(2)
    rec.close()
