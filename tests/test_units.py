"""Durations given as ``datetime.timedelta`` (issue 14, item 4).

Times stay int nanoseconds, but wherever the API takes a *duration* (a delay,
an interval, a slack, a relative expiry, a sleep, a forward interval, an
``advance``) a ``timedelta`` is taken too and converted exactly (timedelta has
microsecond resolution: days, seconds and microseconds are ints, no float on
the way). Where an *absolute* time is taken, a timedelta is a TypeError saying
so. Each case below observes what the core really got (the armed expiry, the
slack, the interval in the C struct, the time advanced or slept), on
``ManualClock`` where the value is exact and on the real clocks otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

import hrtimer_cffi as hrt
from hrtimer_cffi.testing import ManualClock

REL, ABS, HARD = hrt.TimerMode.REL, hrt.TimerMode.ABS, hrt.TimerMode.HARD
INT64_MAX = 2**63 - 1


def ns_of(td: timedelta) -> int:
    """The test's own exact conversion."""
    return ((td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds) * 1_000


class Rel(hrt.HasTimer):
    timer = hrt.TimerField(mode=REL)

    def run(self, ctx: hrt.CallbackContext) -> None:
        pass


class Abs(Rel):
    timer = hrt.TimerField(mode=ABS)


class Forwarder(Rel):
    """Forwards its timer by ``interval`` from inside its callback."""

    def __init__(self, interval: object, how: str) -> None:
        self.interval = interval
        self.how = how

    def run(self, ctx: hrt.CallbackContext) -> None:
        if self.how == "forward":
            ctx.forward(ctx.now, self.interval)  # type: ignore[arg-type]
        else:
            ctx.forward_now(self.interval)  # type: ignore[arg-type]


def _noop(*args: Any) -> None:
    pass


@contextmanager
def cancelling() -> Iterator[list[Any]]:
    """Handles and objects appended to the list are cancelled/closed after."""
    keep: list[Any] = []
    try:
        yield keep
    finally:
        for h in keep:
            (h.close if hasattr(h, "close") else h.cancel)()


# -- durations: each case takes the value (int ns or timedelta) and returns
# (lo, hi): what the core got is known to lie in [lo, hi] (lo == hi: exact).

Range = tuple[int, int]


def _exact(v: int) -> Range:
    return (v, v)


STARTS: dict[str, Callable[[Any, object, object], Any]] = {
    "start": lambda t, e, sl: t.start(e, slack=sl),
    "schedule": lambda t, e, sl: t.schedule(e, slack=sl),
    "start_pinned": lambda t, e, sl: t.start_pinned(e, slack=sl),
}


def _scoped_expiry(obj: Rel, mc: ManualClock, e: object, sl: object) -> Range:
    got: list[int] = []
    with obj.scoped(e, slack=sl):  # type: ignore[arg-type]
        got += [obj.timer.soft_expires, obj.timer.expires]
    return _exact(got[0]) if sl == 0 else _exact(got[1] - got[0])


def _start_scoped_expiry(obj: Rel, mc: ManualClock, e: object, sl: object) -> Range:
    got = obj.start_scoped(  # type: ignore[arg-type]
        e, lambda: (obj.timer.soft_expires, obj.timer.expires), slack=sl
    )
    return _exact(got[0]) if sl == 0 else _exact(got[1] - got[0])


def _manual_start(how: str, expiry: bool) -> Callable[[object], Range]:
    """A REL HasTimer on a ManualClock at 0: its expiry, or its slack."""
    def case(v: object) -> Range:
        mc = ManualClock()
        obj = Rel()
        mc.attach(obj)
        e, sl = (v, 0) if expiry else (hrt.s(1), v)
        if how == "scoped":
            return _scoped_expiry(obj, mc, e, sl)
        if how == "start_scoped":
            return _start_scoped_expiry(obj, mc, e, sl)
        h = STARTS[how](obj, e, sl)
        t = obj.timer
        r = _exact(t.soft_expires if expiry else t.expires - t.soft_expires)
        h.cancel()
        return r
    return case


def _abs_slack(v: object) -> Range:
    mc = ManualClock()
    obj = Abs()
    mc.attach(obj)
    h = obj.start(hrt.s(1), slack=v)  # type: ignore[arg-type]
    r = _exact(obj.timer.expires - obj.timer.soft_expires)
    h.cancel()
    return r


def _mc_call(kind: str, what: str) -> Callable[[object], Range]:
    def case(v: object) -> Range:
        mc = ManualClock()
        if kind == "later":
            h = mc.call_later(v if what == "first" else hrt.s(1), _noop,  # type: ignore[arg-type]
                              slack=v if what == "slack" else 0)  # type: ignore[arg-type]
        elif kind == "at":
            h = mc.call_at(hrt.s(1), _noop, slack=v)  # type: ignore[arg-type]
        else:
            h = mc.call_every(v if what == "first" else hrt.s(1), _noop,  # type: ignore[arg-type]
                              slack=v if what == "slack" else 0)  # type: ignore[arg-type]
        t = h.timer
        if what == "slack":
            r = _exact(t.expires - t.soft_expires)
        elif kind == "every":
            assert t.soft_expires == h.target.interval
            r = _exact(h.target.interval)
        else:
            r = _exact(t.soft_expires)
        h.cancel()
        return r
    return case


def _real_call(kind: str, what: str) -> Callable[[object], Range]:
    def case(v: object) -> Range:
        before = hrt.now()
        if kind == "later":
            h = hrt.call_later(v if what == "first" else hrt.s(60), _noop,  # type: ignore[arg-type]
                               slack=v if what == "slack" else 0)  # type: ignore[arg-type]
        elif kind == "at":
            h = hrt.call_at(before + hrt.s(60), _noop, slack=v)  # type: ignore[arg-type]
        else:
            h = hrt.call_every(v if what == "first" else hrt.s(60), _noop,  # type: ignore[arg-type]
                               slack=v if what == "slack" else 0)  # type: ignore[arg-type]
        after = hrt.now()
        t = h.timer
        try:
            if what == "slack":
                return _exact(t.expires - t.soft_expires)
            if kind == "every":
                return _exact(h.target.interval)
            return (t.soft_expires - after, t.soft_expires - before)
        finally:
            h.cancel()
    return case


def _forward(how: str) -> Callable[[object], Range]:
    def case(v: object) -> Range:
        mc = ManualClock()
        t = mc.timer(REL)
        if how == "Timer.forward":
            assert t.forward(0, v) == 1  # type: ignore[arg-type]
        else:
            assert t.forward_now(v) == 1  # type: ignore[arg-type]
        return _exact(t.expires)
    return case


def _ctx_forward(how: str) -> Callable[[object], Range]:
    def case(v: object) -> Range:
        mc = ManualClock()
        obj = Forwarder(v, how)
        mc.attach(obj)
        h = obj.start(0)
        assert mc.advance(0) == 1
        del h
        return _exact(obj.timer.expires)
    return case


def _advance(v: object) -> Range:
    mc = ManualClock()
    mc.advance(v)  # type: ignore[arg-type]
    return _exact(mc.now())


def _sleep(v: object) -> Range:
    t0 = time.monotonic_ns()
    hrt.sleep(v)  # type: ignore[arg-type]
    elapsed = time.monotonic_ns() - t0
    return (elapsed - hrt.s(1), elapsed)  # never early; generous on a busy machine


def _aio_sleep(v: object) -> Range:
    async def main() -> int:
        t0 = time.monotonic_ns()
        await hrt.aio.sleep(v)  # type: ignore[arg-type]
        return time.monotonic_ns() - t0
    elapsed = asyncio.run(main())
    return (elapsed - hrt.s(1), elapsed)


def _aio_periodic(v: object) -> Range:
    return _exact(hrt.aio.periodic(v).interval)  # type: ignore[arg-type]


def _ctimer_start(expiry: bool) -> Callable[[object], Range]:
    def case(v: object) -> Range:
        ec = hrt.ExpiryCounter()
        before = hrt.now()
        if expiry:
            ec.timer.start(v)  # type: ignore[arg-type]
        else:
            ec.timer.start(hrt.s(60), slack=v)  # type: ignore[arg-type]
        after = hrt.now()
        t = ec.timer
        r = (t.soft_expires - after, t.soft_expires - before) if expiry else _exact(
            t.expires - t.soft_expires)
        ec.cancel()
        return r
    return case


def _builtin_interval(kind: str) -> Callable[[object], Range]:
    def case(v: object) -> Range:
        if kind == "LatencyRecorder":
            rec = hrt.LatencyRecorder(1, interval=v)  # type: ignore[arg-type]
            r = _exact(int(rec._rec.interval))
            rec.close()
        elif kind == "ExpiryCounter":
            r = _exact(int(hrt.ExpiryCounter(interval=v)._c.interval))  # type: ignore[arg-type]
        else:
            ev = hrt.EventfdTimer(interval=v)  # type: ignore[arg-type]
            r = _exact(int(ev._p.interval))
            ev.close()
        return r
    return case


LONG = timedelta(days=2, seconds=3, microseconds=7)    # not a whole ms, not a float
SHORT = timedelta(microseconds=1_234)                   # for slack
NAP = timedelta(milliseconds=2, microseconds=1)         # for real sleeps

DURATIONS: dict[str, tuple[timedelta, Callable[[object], Range]]] = {}
for _how in ("start", "schedule", "start_pinned", "start_scoped", "scoped"):
    DURATIONS[f"HasTimer.{_how}-expires"] = (LONG, _manual_start(_how, True))
    DURATIONS[f"HasTimer.{_how}-slack"] = (SHORT, _manual_start(_how, False))
DURATIONS["HasTimer.start-abs-slack"] = (SHORT, _abs_slack)
for _kind, _first in (("later", "delay"), ("every", "interval")):
    DURATIONS[f"ManualClock.call_{_kind}-{_first}"] = (LONG, _mc_call(_kind, "first"))
    DURATIONS[f"call_{_kind}-{_first}"] = (LONG, _real_call(_kind, "first"))
for _kind in ("later", "at", "every"):
    DURATIONS[f"ManualClock.call_{_kind}-slack"] = (SHORT, _mc_call(_kind, "slack"))
    DURATIONS[f"call_{_kind}-slack"] = (SHORT, _real_call(_kind, "slack"))
for _how in ("Timer.forward", "Timer.forward_now"):
    DURATIONS[f"{_how}-interval"] = (LONG, _forward(_how))
for _how in ("forward", "forward_now"):
    DURATIONS[f"CallbackContext.{_how}-interval"] = (LONG, _ctx_forward(_how))
DURATIONS["ManualClock.advance"] = (LONG, _advance)
DURATIONS["sleep"] = (NAP, _sleep)
DURATIONS["aio.sleep"] = (NAP, _aio_sleep)
DURATIONS["aio.periodic-interval"] = (LONG, _aio_periodic)
DURATIONS["CTimer.start-expires"] = (LONG, _ctimer_start(True))
DURATIONS["CTimer.start-slack"] = (SHORT, _ctimer_start(False))
for _kind in ("LatencyRecorder", "ExpiryCounter", "EventfdTimer"):
    DURATIONS[f"{_kind}-interval"] = (LONG, _builtin_interval(_kind))


@pytest.mark.parametrize("name", list(DURATIONS))
def test_a_duration_takes_a_timedelta_exactly(name: str) -> None:
    td, case = DURATIONS[name]
    ns = ns_of(td)
    lo, hi = case(ns)            # the case itself, with int ns
    assert lo <= ns <= hi, (name, ns, lo, hi)
    lo, hi = case(td)            # the same with the timedelta
    assert lo <= ns <= hi, (name, td, lo, hi)


def test_timedelta_conversion_is_exact_up_to_the_int64_limit() -> None:
    # The largest timedelta that fits in int64 ns: a float conversion
    # (total_seconds() * 1e9) is off by hundreds of ns here, and overflows.
    edge = timedelta(days=106_751, seconds=85_636, microseconds=854_775)
    assert ns_of(edge) == INT64_MAX - 807
    assert int(edge.total_seconds() * 1e9) != ns_of(edge)
    mc = ManualClock()
    h = mc.call_every(edge, _noop)
    assert h.target.interval == INT64_MAX - 807
    h.cancel()
    with pytest.raises(ValueError, match="interval must fit in int64 nanoseconds"):
        mc.call_every(edge + timedelta(microseconds=1), _noop)
    neg = timedelta(microseconds=-1)
    assert ns_of(neg) == -1_000
    with pytest.raises(ValueError, match=r"delay must be >= 0 ns, got -1000$"):
        mc.call_later(neg, _noop)
    with pytest.raises(ValueError, match="interval must be > 0 ns, got 0"):
        mc.call_every(timedelta(0), _noop)
    with pytest.raises(ValueError, match="delta must fit in int64 nanoseconds"):
        mc.advance(timedelta.max)


def test_a_duration_refuses_bool_and_float_and_names_timedelta() -> None:
    mc = ManualClock()
    with pytest.raises(TypeError, match="delay must be an int of nanoseconds, got bool True"):
        mc.call_later(True, _noop)
    with pytest.raises(TypeError) as info:
        mc.call_later(0.005, _noop)  # type: ignore[arg-type]
    assert str(info.value) == (
        "delay must be an int of nanoseconds, got float 0.005 "
        "(convert with hrtimer_cffi.us/ms/s; a datetime.timedelta is taken too)"
    )
    with pytest.raises(TypeError, match=r"got str '5' \(a datetime.timedelta is taken too\)"):
        hrt.sleep("5")  # type: ignore[arg-type]


def test_latency_recorder_wait_takes_a_timedelta() -> None:
    # A timeout in seconds (as threading's), so a timedelta is the same
    # duration; rounded up to poll()'s milliseconds, never down.
    rec = hrt.LatencyRecorder(1)
    try:
        t0 = time.monotonic_ns()
        assert rec.wait(timedelta(milliseconds=30, microseconds=1)) is False
        assert time.monotonic_ns() - t0 >= hrt.ms(30)
        assert rec.wait(timedelta(0)) is False
        with pytest.raises(ValueError, match="timeout must be at most"):
            rec.wait(timedelta(days=25))
        rec.start(hrt.us(10))
        assert rec.wait(timedelta(seconds=5)) is True
    finally:
        rec.close()


# -- absolute times: a timedelta is a TypeError, before anything is armed.

TD = timedelta(milliseconds=5)


def _abs_start(how: str) -> Callable[[], object]:
    def case() -> object:
        obj = Abs()
        if how == "scoped":
            return obj.scoped(TD)  # type: ignore[arg-type]
        if how == "start_scoped":
            return obj.start_scoped(TD, _noop)  # type: ignore[arg-type]
        return STARTS[how](obj, TD, 0)
    return case


def _aio_sleep_until() -> object:
    async def main() -> int:
        return await hrt.aio.sleep_until(TD)  # type: ignore[arg-type]
    return asyncio.run(main())


ABSOLUTES: dict[str, tuple[Callable[[], object], str]] = {
    "call_at-when": (lambda: hrt.call_at(TD, _noop), "when"),  # type: ignore[arg-type]
    "ManualClock.call_at-when": (lambda: ManualClock().call_at(TD, _noop), "when"),  # type: ignore[arg-type]
    "sleep_until-deadline": (lambda: hrt.sleep_until(TD), "deadline"),  # type: ignore[arg-type]
    "aio.sleep_until-deadline": (_aio_sleep_until, "deadline"),
    "aio.periodic-first": (lambda: hrt.aio.periodic(hrt.ms(1), first=TD), "first"),  # type: ignore[arg-type]
    "Timer.forward-now": (lambda: ManualClock().timer().forward(TD, 10), "now"),  # type: ignore[arg-type]
    "CTimer-ABS.start-expires": (
        lambda: hrt.ExpiryCounter(mode=ABS | HARD).start(TD), "expires"),  # type: ignore[arg-type]
}
for _how in ("start", "schedule", "start_pinned", "start_scoped", "scoped"):
    ABSOLUTES[f"HasTimer-ABS.{_how}-expires"] = (_abs_start(_how), "expires")


@pytest.mark.parametrize("name", list(ABSOLUTES))
def test_an_absolute_time_refuses_a_timedelta(name: str) -> None:
    case, arg = ABSOLUTES[name]
    with pytest.raises(TypeError) as info:
        case()
    assert str(info.value) == (
        f"{arg} is an absolute time (int nanoseconds on its clock), got the duration "
        "datetime.timedelta(microseconds=5000); for a time that far from now pass now + ns, "
        "e.g. hrtimer_cffi.now() + hrtimer_cffi.ms(5)"
    )


# -- ManualClock: its start is a time, shift_realtime a (signed) duration.

def test_manual_clock_start_is_a_time_not_a_duration() -> None:
    with pytest.raises(TypeError, match="start is an absolute time"):
        ManualClock(timedelta(seconds=1))  # type: ignore[arg-type]


def test_manual_clock_shift_realtime_takes_a_timedelta() -> None:
    mc = ManualClock()
    mc.shift_realtime(timedelta(seconds=-1))  # type: ignore[arg-type]
    assert mc.now(hrt.ClockId.REALTIME) == -hrt.s(1)
