"""Bad arguments to every public entry point: TypeError or ValueError with a
clear message, raised before anything is armed (API.md, "Errors")."""

from __future__ import annotations

import gc
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

import hrtimer_cffi as hrt
from hrtimer_cffi.calls import Call, PeriodicCall
from hrtimer_cffi.testing import ManualClock

REL, ABS = hrt.TimerMode.REL, hrt.TimerMode.ABS
HARD, SOFT, PINNED = hrt.TimerMode.HARD, hrt.TimerMode.SOFT, hrt.TimerMode.PINNED
TOO_BIG = 2**63
TOO_SMALL = -(2**63) - 1


class Rel(hrt.HasTimer):
    timer = hrt.TimerField(mode=REL)

    def __init__(self) -> None:
        self.calls = 0

    def run(self, ctx: hrt.CallbackContext) -> None:
        self.calls += 1


class Abs(Rel):
    timer = hrt.TimerField(mode=ABS)


@dataclass
class Env:
    rel: Rel = field(default_factory=Rel)
    abs: Abs = field(default_factory=Abs)
    mc: ManualClock = field(default_factory=ManualClock)
    fn_calls: list[Any] = field(default_factory=list)

    def fn(self, *args: Any) -> None:
        self.fn_calls.append(args)


Case = tuple[str, Callable[[Env], object], type[Exception], str]

NOT_NS = [  # value, exception, message fragment: for any int-ns argument
    (1.5, TypeError, "must be an int of nanoseconds, got float 1.5"),
    (1.0, TypeError, "must be an int of nanoseconds, got float 1.0 (convert with hrtimer_cffi"),
    (True, TypeError, "must be an int of nanoseconds, got bool True"),
    ("5", TypeError, "must be an int of nanoseconds, got str '5'"),
    (None, TypeError, "must be an int of nanoseconds, got NoneType None"),
    (TOO_BIG, ValueError, f"must fit in int64 nanoseconds, got {TOO_BIG}"),
]
NEGATIVE = [(-1, ValueError, "must be >= 0 ns, got -1")]
NON_POSITIVE = [(0, ValueError, "must be > 0 ns, got 0"), (-5, ValueError, "must be > 0 ns")]

STARTS: dict[str, Callable[[Any, object, object], object]] = {
    "start": lambda t, e, sl: t.start(e, slack=sl),
    "schedule": lambda t, e, sl: t.schedule(e, slack=sl),
    "start_pinned": lambda t, e, sl: t.start_pinned(e, slack=sl),
    "start_scoped": lambda t, e, sl: t.start_scoped(e, lambda: None, slack=sl),
    "scoped": lambda t, e, sl: t.scoped(e, slack=sl),
}


def _cases() -> list[Case]:
    cases: list[Case] = []
    for name, call in STARTS.items():
        for v, exc, frag in NOT_NS + NEGATIVE:
            cases.append((f"{name}-rel-expires={v!r}", lambda env, c=call, v=v: c(env.rel, v, 0),
                          exc, "expires (relative) " + frag))
        too_small = (TOO_SMALL, ValueError, f"must fit in int64 nanoseconds, got {TOO_SMALL}")
        for v, exc, frag in [*NOT_NS[:3], too_small]:
            cases.append((f"{name}-abs-expires={v!r}", lambda env, c=call, v=v: c(env.abs, v, 0),
                          exc, "expires " + frag))
        for v, exc, frag in NOT_NS + NEGATIVE:
            cases.append((f"{name}-slack={v!r}", lambda env, c=call, v=v: c(env.rel, 10**9, v),
                          exc, "slack " + frag))
    cases.append(("start_scoped-f=None", lambda env: env.rel.start_scoped(10**9, None),
                  TypeError, "start_scoped() needs a callable f, got NoneType"))

    modes: list[tuple[object, type[Exception], str]] = [
        ("REL", TypeError, "mode must be a TimerMode, got str"),
        (1.0, TypeError, "mode must be a TimerMode, got float"),
        (PINNED, ValueError, "TimerMode.PINNED is not supported"),
        (REL | PINNED, ValueError, "TimerMode.PINNED is not supported"),
        (SOFT | HARD, ValueError, "SOFT and TimerMode.HARD exclude each other"),
        (16, ValueError, "unknown TimerMode bits in 16"),
        (-1, ValueError, "unknown TimerMode bits in -1"),
    ]
    clocks: list[tuple[object, type[Exception], str]] = [
        (2, ValueError, "unknown clock 2; expected one of REALTIME=0, MONOTONIC=1"),
        (-1, ValueError, "unknown clock -1"),
        ("MONOTONIC", TypeError, "clock must be a ClockId, got str"),
        (True, TypeError, "clock must be a ClockId, got bool"),
        (None, TypeError, "clock must be a ClockId, got NoneType"),
    ]
    makers: dict[str, Callable[[Env, object, object], object]] = {
        "Timer": lambda env, m, c: hrt.Timer(m, c),  # type: ignore[arg-type]
        "TimerField": lambda env, m, c: hrt.TimerField(m, c),  # type: ignore[arg-type]
        "ManualClock.timer": lambda env, m, c: env.mc.timer(m, c),  # type: ignore[arg-type]
    }
    for name, make in makers.items():
        for v, exc, frag in modes:
            cases.append((f"{name}-mode={v!r}",
                          lambda env, mk=make, v=v: mk(env, v, hrt.ClockId.MONOTONIC), exc, frag))
        for v, exc, frag in clocks:
            cases.append((f"{name}-clock={v!r}", lambda env, mk=make, v=v: mk(env, REL, v),
                          exc, frag))

    for v, exc, frag in NOT_NS:
        cases.append((f"forward-now={v!r}", lambda env, v=v: env.rel.timer.forward(v, 10),
                      exc, "now " + frag))
    for v, exc, frag in NOT_NS + NON_POSITIVE:
        cases.append((f"forward-interval={v!r}", lambda env, v=v: env.rel.timer.forward(0, v),
                      exc, "interval " + frag))
        cases.append((f"forward_now-interval={v!r}",
                      lambda env, v=v: env.rel.timer.forward_now(v), exc, "interval " + frag))

    calls: dict[str, Callable[..., object]] = {
        "call_later": lambda env, first, **kw: hrt.call_later(first, env.fn, **kw),
        "call_at": lambda env, first, **kw: hrt.call_at(first, env.fn, **kw),
        "call_every": lambda env, first, **kw: hrt.call_every(first, env.fn, **kw),
    }
    firsts = {
        "call_later": ("delay", NOT_NS + NEGATIVE),
        "call_at": ("when", NOT_NS),
        "call_every": ("interval", NOT_NS + NON_POSITIVE),
    }
    for name, call in calls.items():
        arg, bad = firsts[name]
        for v, exc, frag in bad:
            cases.append((f"{name}-{arg}={v!r}", lambda env, c=call, v=v: c(env, v),
                          exc, f"{arg} {frag}"))
        for v, exc, frag in NOT_NS + NEGATIVE:
            cases.append((f"{name}-slack={v!r}", lambda env, c=call, v=v: c(env, 10**9, slack=v),
                          exc, "slack " + frag))
        for v in (1, None, "yes"):
            cases.append((f"{name}-hard={v!r}", lambda env, c=call, v=v: c(env, 10**9, hard=v),
                          TypeError, "hard must be a bool"))
        fn_call = {
            "call_later": lambda env: hrt.call_later(10**9, None),  # type: ignore[arg-type]
            "call_at": lambda env: hrt.call_at(10**9, 5),  # type: ignore[arg-type]
            "call_every": lambda env: hrt.call_every(10**9, "f"),  # type: ignore[arg-type]
        }[name]
        cases.append((f"{name}-fn-not-callable", fn_call, TypeError, "fn must be callable"))
    for v, exc, frag in clocks:
        cases.append((f"call_at-clock={v!r}",
                      lambda env, v=v: hrt.call_at(10**9, env.fn, clock=v), exc, frag))

    for v, exc, frag in clocks:
        cases.append((f"now-clock={v!r}", lambda env, v=v: hrt.now(v), exc, frag))
    for unit in ("us", "ms", "s"):
        helper = getattr(hrt, unit)
        for v, exc, frag in [
            ("1", TypeError, f"{unit}() takes an int or float, got str"),
            (True, TypeError, f"{unit}() takes an int or float, got bool"),
            (None, TypeError, f"{unit}() takes an int or float, got NoneType"),
            (math.nan, ValueError, f"{unit}() needs a finite number"),
            (math.inf, ValueError, f"{unit}() needs a finite number"),
            (1e300, ValueError, "does not fit in int64 nanoseconds"),
            (2**80, ValueError, "does not fit in int64 nanoseconds"),
        ]:
            cases.append((f"{unit}({v!r})", lambda env, h=helper, v=v: h(v), exc, frag))

    for v, exc, frag in NOT_NS + NEGATIVE:
        cases.append((f"sleep-delta={v!r}", lambda env, v=v: hrt.sleep(v), exc, "delta " + frag))
    for v, exc, frag in NOT_NS:
        cases.append((f"sleep_until-deadline={v!r}", lambda env, v=v: hrt.sleep_until(v),
                      exc, "deadline " + frag))
    for v, exc, frag in clocks[:3]:
        cases.append((f"sleep-clock={v!r}", lambda env, v=v: hrt.sleep(0, clock=v), exc, frag))
        cases.append((f"sleep_until-clock={v!r}", lambda env, v=v: hrt.sleep_until(0, clock=v),
                      exc, frag))

    cases += [
        ("ManualClock(start=-1)", lambda env: ManualClock(-1), ValueError, "start must be >= 0"),
        ("ManualClock.advance(-1)", lambda env: env.mc.advance(-1), ValueError,
         "delta must be >= 0"),
        ("ManualClock.advance(1.0)", lambda env: env.mc.advance(1.0), TypeError,  # type: ignore[arg-type]
         "delta must be an int"),
        ("ManualClock.attach(object)", lambda env: env.mc.attach(object()),  # type: ignore[arg-type]
         TypeError, "attach() needs a HasTimer"),
        ("ManualClock.call_later(-1)", lambda env: env.mc.call_later(-1, env.fn), ValueError,
         "delay must be >= 0"),
        ("ManualClock.call_every(0)", lambda env: env.mc.call_every(0, env.fn), ValueError,
         "interval must be > 0"),
        ("ManualClock.call_at(1.5)", lambda env: env.mc.call_at(1.5, env.fn),  # type: ignore[arg-type]
         TypeError, "when must be an int"),
        ("ManualClock.call_later(fn=None)", lambda env: env.mc.call_later(1, None),  # type: ignore[arg-type]
         TypeError, "fn must be callable"),
    ]
    return cases


CASES = _cases()


def _nothing_armed(env: Env) -> None:
    assert not env.rel.timer.is_active() and not env.abs.timer.is_active()
    gc.collect()
    # A call's target made before the error may still be referenced (by the
    # traceback); none of them may be armed.
    armed = [o for o in gc.get_objects()
             if isinstance(o, (Call, PeriodicCall)) and getattr(o.fn, "__self__", None) is env
             and o.timer.is_active()]
    assert armed == []
    assert env.rel.calls == env.abs.calls == 0 and env.fn_calls == []


@pytest.mark.parametrize("name, call, exc, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name: str, call: Callable[[Env], object], exc: type[Exception],
                   fragment: str) -> None:
    env = Env()
    with pytest.raises(exc) as info:
        call(env)
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"
    assert fragment in str(info.value)
    _nothing_armed(env)
    del info
    gc.collect()
    # With the traceback gone, nothing of the call is left at all.
    assert not [o for o in gc.get_objects()
                if isinstance(o, (Call, PeriodicCall)) and getattr(o.fn, "__self__", None) is env]


@pytest.mark.parametrize("name", list(STARTS))
def test_bad_restart_leaves_the_armed_timer_alone(name: str) -> None:
    env = Env()
    h = env.rel.start(hrt.s(60), slack=hrt.us(5))
    before = (env.rel.timer.soft_expires, env.rel.timer.expires)
    for bad, slack in [(-1, 0), (1.5, 0), (10**9, -1)]:
        with pytest.raises((TypeError, ValueError)):
            STARTS[name](env.rel, bad, slack)
        assert env.rel.timer.is_queued()
        assert (env.rel.timer.soft_expires, env.rel.timer.expires) == before
    h.cancel()


def test_bad_return_of_run_is_a_callback_error(unraisable: list[Any]) -> None:
    """A TypeError of the callback: on a ManualClock advance() raises it."""
    class Weird(Rel):
        def run(self, ctx: hrt.CallbackContext) -> Any:
            return 2

    mc = ManualClock()
    w = Weird()
    mc.attach(w)
    h = w.start(1)
    with pytest.raises(TypeError, match="run\\(\\) must return a TimerRestart or None, got 2"):
        mc.advance(1)
    assert unraisable == []
    assert not w.timer.is_active()
    del h


class Index:
    """An integer type that is not int (as numpy's)."""

    def __init__(self, v: int) -> None:
        self.v = v

    def __index__(self) -> int:
        return self.v


def test_integer_types_other_than_int_are_accepted() -> None:
    env = Env()
    h = env.rel.start(Index(hrt.s(60)), slack=Index(5))  # type: ignore[arg-type]
    assert env.rel.timer.expires - env.rel.timer.soft_expires == 5
    h.cancel()
    assert env.rel.timer.forward(Index(0), Index(10)) == 0  # type: ignore[arg-type]
    got = threading.Event()
    hrt.call_later(Index(0), got.set)  # type: ignore[arg-type]
    assert got.wait(5.0)
