"""A typed tour of the public timer API (checked with ``mypy --strict``).

Run it: ``python examples/typed_example.py``; it takes well under a second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import hrtimer_cffi as hrt
from hrtimer_cffi.testing import ManualClock


class Heartbeat(hrt.HasTimer):
    """A periodic HARD timer: forwards itself by whole periods, drift-free."""

    timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.HARD)

    def __init__(self, period: int, beats: int) -> None:
        self.period = period
        self.beats_left = beats
        self.missed = 0
        self.done = threading.Event()

    def run(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart:
        self.beats_left -= 1
        if self.beats_left == 0:
            self.done.set()
            return hrt.TimerRestart.NO_RESTART
        self.missed += ctx.forward_now(self.period) - 1
        return hrt.TimerRestart.RESTART


class Deadline(hrt.HasTimer):
    """A one-shot SOFT timer at an absolute time on the REALTIME clock."""

    timer = hrt.TimerField(mode=hrt.TimerMode.ABS, clock=hrt.ClockId.REALTIME)

    def __init__(self) -> None:
        self.fired = threading.Event()
        self.late_by = 0

    def run(self, ctx: hrt.CallbackContext) -> None:
        self.late_by = ctx.now - ctx.timer.soft_expires
        self.fired.set()


def arm_any(p: hrt.TimerPointer, expires: int) -> hrt.TimerHandle[Any]:
    """Anything with a shared ``start`` (the seed's TimerPointer)."""
    return p.start(expires)


def pinned(p: hrt.UnsafeTimerPointer, expires: int) -> hrt.TimerHandle[Any]:
    return p.start_pinned(expires)


def scoped_call(p: hrt.ScopedTimerPointer, expires: int, f: Callable[[], int]) -> int:
    return p.start_scoped(expires, f)


def shared_pointer() -> None:
    hb = Heartbeat(hrt.ms(1), beats=5)
    assert isinstance(hb, hrt.TimerCallback)
    handle: hrt.ArcTimerHandle[Heartbeat] = hb.start(hrt.ms(1))   # generic in its target
    assert handle.target is hb and handle.timer is hb.timer
    handle.detach()                      # leaking it is safe now
    del handle                           # the timer keeps running
    assert hb.done.wait(2.0)
    assert hb.missed >= 0 and not hb.timer.is_active()

    again = arm_any(hb, hrt.s(60))       # a second start: a new handle
    assert again.try_to_cancel() == 1 and again.try_to_cancel() == 0


def pinned_and_scoped() -> None:
    hb = Heartbeat(hrt.ms(1), beats=1)
    ph = pinned(hb, hrt.s(60))
    try:
        ph.detach()
    except TypeError:
        pass                             # pinned handles never detach
    assert ph.cancel() is True

    value = scoped_call(hb, hrt.ms(1), lambda: 42 if hb.done.wait(2.0) else 0)
    assert value == 42 and not hb.timer.is_active()
    with hb.scoped(hrt.s(60)) as sh:
        assert sh.timer.is_queued()
    assert not hb.timer.is_queued()

    with hb.start(hrt.s(60)) as h:       # leaving the block cancels and waits
        assert h.timer.remaining() > 0
    assert not hb.timer.is_active()


def introspection_and_forward() -> None:
    d = Deadline()
    tm: hrt.Timer = d.timer
    when = hrt.now(hrt.ClockId.REALTIME) + hrt.ms(2)
    h = d.start(when, slack=hrt.us(50))
    assert tm.clock is hrt.ClockId.REALTIME
    assert tm.expires - tm.soft_expires == hrt.us(50)
    print(f"queued={tm.is_queued()} running={tm.is_callback_running()} {tm!r}")
    try:
        tm.forward(tm.now(), hrt.ms(1))
    except hrt.TimerStateError:
        pass                             # Linux warns: forward on a queued timer
    assert d.fired.wait(2.0) and d.late_by >= 0
    h.cancel()
    n = tm.now()
    overruns: int = tm.forward(n, hrt.ms(1))
    assert overruns >= 1 and tm.soft_expires > n  # forward moves past `now`


def manual_clock() -> None:
    mc = ManualClock()
    hb = Heartbeat(period=hrt.us(100), beats=3)
    mc.attach(hb)
    handle = hb.start(hrt.us(100))
    assert mc.advance(hrt.us(100)) == 1          # stops at each deadline: one beat
    assert mc.advance_jump(hrt.us(250)) == 1     # one jump, as if the process was stopped
    assert hb.missed == 1                        # one period skipped at 350 us
    assert mc.advance(hrt.us(50)) == 1 and hb.done.is_set()
    del handle


def plain_callables() -> None:
    got: list[str] = []
    done = threading.Event()

    def note(word: str) -> None:
        got.append(word)
        if len(got) == 2:
            done.set()

    later: hrt.Call = hrt.call_later(hrt.ms(1), note, "later")
    hrt.call_at(hrt.now() + hrt.ms(2), note, "at", hard=True)
    assert later.detached and done.wait(2.0)
    every = hrt.call_every(hrt.ms(1), lambda: None, slack=hrt.us(10))
    hrt.sleep(hrt.ms(5))
    every.cancel()
    assert sorted(got) == ["at", "later"]


def sleeping_and_errors() -> None:
    hrt.sleep(hrt.us(200))
    hrt.sleep(timedelta(microseconds=200))   # a duration may be a timedelta
    late: int = hrt.sleep_until(hrt.now() + hrt.ms(1))
    assert late >= 0
    try:
        hrt.call_later(hrt.ms(1.5) * -1, print)
    except ValueError as e:
        print(f"rejected: {e}")
    assert issubclass(hrt.TimerStateError, hrt.HrTimerError)
    assert issubclass(hrt.TimerStateError, RuntimeError)


def main() -> None:
    shared_pointer()
    pinned_and_scoped()
    introspection_and_forward()
    manual_clock()
    plain_callables()
    sleeping_and_errors()
    print("typed example: ok")


if __name__ == "__main__":
    main()
