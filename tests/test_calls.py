"""call_later / call_at / call_every on the real clock: when they run, on which
thread, their detached handles, cancel, and errors in the callable."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import pytest

import hrtimer_cffi as hrt
from hrtimer_cffi.calls import Call, PeriodicCall

WAIT = 5.0


def wait_for(pred: Any, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


class Log:
    """A callable that records (now, thread, args) per call."""

    def __init__(self, clock: hrt.ClockId = hrt.ClockId.MONOTONIC) -> None:
        self.clock = clock
        self.calls: list[tuple[int, int, tuple[Any, ...]]] = []
        self.event = threading.Event()

    def __call__(self, *args: Any) -> None:
        self.calls.append((hrt.now(self.clock), threading.get_ident(), args))
        self.event.set()


@pytest.mark.parametrize("hard", [False, True], ids=["SOFT", "HARD"])
def test_call_later_runs_once_never_early(hard: bool) -> None:
    log = Log()
    start = hrt.now()
    h = hrt.call_later(hrt.ms(3), log, "a", 2, hard=hard)
    assert isinstance(h, hrt.ArcTimerHandle) and h.detached
    assert isinstance(h.target, Call) and h.target.fn is log
    del h                                   # detached: dropping does not cancel
    assert log.event.wait(WAIT)
    time.sleep(0.02)
    ((when, thread, args),) = log.calls
    assert args == ("a", 2)
    assert when >= start + hrt.ms(3)
    assert thread != threading.get_ident()


def test_call_at_absolute_on_each_clock() -> None:
    for clock in hrt.ClockId:
        log = Log(clock)
        target = hrt.now(clock) + hrt.ms(2)
        h = hrt.call_at(target, log, clock=clock)
        assert h.timer.clock is clock
        assert h.timer.mode == hrt.TimerMode.ABS | hrt.TimerMode.SOFT
        assert log.event.wait(WAIT), clock
        assert log.calls[0][0] >= target


def test_call_at_in_the_past_runs_at_once() -> None:
    log = Log()
    hrt.call_at(hrt.now() - hrt.s(1), log, hard=True)
    assert log.event.wait(WAIT)


def test_hard_and_soft_calls_run_on_different_threads() -> None:
    soft, hard = Log(), Log()
    hrt.call_later(0, soft)
    hrt.call_later(0, hard, hard=True)
    assert soft.event.wait(WAIT) and hard.event.wait(WAIT)
    assert soft.calls[0][1] != hard.calls[0][1]
    assert threading.get_ident() not in (soft.calls[0][1], hard.calls[0][1])


def test_cancel_before_it_runs() -> None:
    log = Log()
    h = hrt.call_later(hrt.ms(30), log)
    assert h.cancel() is True
    assert h.cancel() is False
    assert not h.timer.is_active()
    time.sleep(0.06)
    assert log.calls == []


@pytest.mark.parametrize("hard", [False, True], ids=["SOFT", "HARD"])
def test_call_every_runs_until_cancelled(hard: bool) -> None:
    log = Log()
    h = hrt.call_every(hrt.ms(2), log, "x", hard=hard)
    p = h.target
    assert isinstance(p, PeriodicCall) and p.interval == hrt.ms(2)
    assert wait_for(lambda: len(log.calls) >= 5)
    assert h.cancel() in (True, False)
    assert not p.timer.is_active()
    n = len(log.calls)
    time.sleep(0.03)
    assert len(log.calls) == n, "calls went on after the cancel"
    assert all(args == ("x",) for _, _, args in log.calls)
    times = [t for t, _, _ in log.calls]
    assert times == sorted(times)


def test_call_every_cancel_waits_and_stops() -> None:
    entered = threading.Event()
    release = threading.Event()
    count = [0]

    def slow() -> None:
        count[0] += 1
        entered.set()
        release.wait(WAIT)

    h = hrt.call_every(hrt.ms(1), slow)
    assert entered.wait(WAIT)
    threading.Timer(0.05, release.set).start()
    # As hrtimer_cancel: it waits for the running call, which re-queues the
    # timer (RESTART); then it removes it from the queue: True.
    assert h.cancel() is True
    assert release.is_set(), "cancel() returned before the running call did"
    n = count[0]
    time.sleep(0.02)
    assert count[0] == n and not h.timer.is_active()


def test_call_every_cancel_from_inside_fn() -> None:
    box: list[hrt.ArcTimerHandle] = []
    count = [0]
    done = threading.Event()

    def fn() -> None:
        count[0] += 1
        if count[0] == 3:
            box[0].cancel()                 # from its own callback: no wait
            done.set()

    box.append(hrt.call_every(hrt.ms(1), fn, hard=True))
    assert done.wait(WAIT)
    assert wait_for(lambda: not box[0].timer.is_active())
    time.sleep(0.01)
    assert count[0] == 3


@pytest.mark.parametrize("hard", [False, True], ids=["SOFT", "HARD"])
def test_an_error_in_fn_stops_only_that_call(hard: bool, unraisable: list[Any]) -> None:
    count = [0]

    def bad() -> None:
        count[0] += 1
        raise ZeroDivisionError("from fn")

    good = hrt.call_every(hrt.ms(1), lambda: None, hard=hard)
    h = hrt.call_every(hrt.ms(1), bad, hard=hard)
    assert wait_for(lambda: len(unraisable) >= 1)
    runs = good.target.runs
    assert wait_for(lambda: good.target.runs >= runs + 5), "the other call stopped"
    good.cancel()
    assert count[0] == 1 and not h.timer.is_active()
    (args,) = unraisable
    assert isinstance(args.exc_value, ZeroDivisionError)
    assert args.object.target is h.target


def test_a_discarded_handle_does_not_cancel() -> None:
    log = Log()
    hrt.call_later(hrt.ms(2), log)
    gc.collect()
    assert log.event.wait(WAIT)


def test_call_every_with_slack_is_never_early_nor_repeated() -> None:
    # Each call comes at or after its soft expiry on the grid of the first,
    # at most once per interval (a call between soft and hard expiry must
    # not fire again at once).
    log = Log()
    before = hrt.now()
    h = hrt.call_every(hrt.ms(4), log, slack=hrt.ms(2), hard=True)
    after = hrt.now()
    time.sleep(0.1)
    h.cancel()
    end = hrt.now()
    p = h.target
    tm = h.timer
    assert tm.expires - tm.soft_expires == hrt.ms(2)
    origin = tm.soft_expires - hrt.ms(4) * (p.runs + p.overruns + 1)
    assert before <= origin <= after, "the period drifted"
    assert len(log.calls) == p.runs
    assert p.runs <= (end - origin) // hrt.ms(4), "more calls than intervals"
    assert all(t >= origin + hrt.ms(4) for t, _, _ in log.calls), "a call came early"
    assert p.runs >= 5


def test_timers_of_finished_calls_are_reused_only_when_unreferenced() -> None:
    """Finished calls hand their timers to the next ones, except a timer the
    user still refers to: that one is never armed again behind their back."""

    got: list[int] = []
    done = threading.Event()
    h = hrt.call_later(0, lambda: (got.append(0), done.set()))
    assert done.wait(5.0)
    kept = h.timer
    gen = kept._gen
    del h
    gc.collect()
    n = 200
    all_done = threading.Event()

    def note(i: int) -> None:
        got.append(i)
        if len(got) == n + 1:
            all_done.set()

    for i in range(1, n + 1):
        hrt.call_later(hrt.us(10 * (i % 7)), note, i)
    assert all_done.wait(5.0)
    time.sleep(0.05)
    assert sorted(got) == list(range(n + 1)), "every call ran exactly once"
    assert kept._gen == gen and not kept.is_active(), "a referenced timer was reused"
