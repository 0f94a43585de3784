"""Bad input: hypothesis throws random arguments at the public API.

Ints in and out of int64, negative, near the edges, floats (nan, inf), bools,
None, strings, bytes, enums of the wrong kind, int subclasses, objects with
``__index__``, arbitrary objects. Whatever comes in, the call either works or
raises one of the documented exceptions — ``TypeError``, ``ValueError`` or
``TimerStateError`` — and the interpreter survives. Anything that a call
armed is cancelled after each example.

The hypothesis test runs in a child pytest, so a crash of the interpreter is
a failed test (with the child's output), not a dead test run.
"""

from __future__ import annotations

import operator
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import hrtimer_cffi as hrt
from hrtimer_cffi.testing import ManualClock

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
ALLOWED = (TypeError, ValueError, hrt.TimerStateError)


class MyInt(int):
    pass


class Indexable:
    def __init__(self, v: int) -> None:
        self.v = v

    def __index__(self) -> int:
        return self.v


class Color(int):
    """An int-valued enum-like of the wrong kind."""


def _noop(*args: object) -> None:
    return None


INTS = st.one_of(
    st.integers(-5, 5),
    st.integers(-(10**6), 10**6),
    st.sampled_from([INT64_MAX, INT64_MIN, INT64_MAX + 1, INT64_MIN - 1, 2**64, -(2**64),
                     2**100, -(2**100), 2**62, 10**9, 10**15]),
    st.integers(),
)
ANY = st.one_of(
    INTS,
    INTS.map(MyInt),
    INTS.map(Indexable),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.sampled_from(list(hrt.ClockId) + list(hrt.TimerMode) + list(hrt.TimerRestart)),
    st.sampled_from([hrt.TimerMode.REL | hrt.TimerMode.HARD, hrt.TimerMode.PINNED,
                     hrt.TimerMode.SOFT | hrt.TimerMode.HARD, hrt.TimerMode(15)]),
    st.builds(object),
    st.just([1]),
    st.just(_noop),
    st.just(len),
    st.sampled_from(["latency", "count", "eventfd", "bogus", "", "1"]),
)


def as_int(x: object) -> int | None:
    """The int a sleep may read from ``x`` (ints and ``__index__`` objects)."""
    if isinstance(x, bool):
        return None
    try:
        return operator.index(x)  # type: ignore[arg-type]
    except TypeError:
        return None


def short_wait(x: object) -> bool:
    """True for an argument a sleep would take as a long but valid wait."""
    v = as_int(x)
    return v is not None and 10**6 < v <= INT64_MAX


class Target(hrt.HasTimer):
    timer = hrt.TimerField()

    def run(self, ctx: hrt.CallbackContext) -> None:
        return None


def _field_target(mode: Any, clock: Any) -> Any:
    cls = type("Fuzzed", (hrt.HasTimer,), {
        "timer": hrt.TimerField(mode, clock),
        "run": lambda self, ctx: None,
    })
    return cls()


# Each operation takes the drawn arguments, returns what it armed (to cancel).
Op = Callable[[list[Any], dict[str, Any]], list[Any]]


def op_now(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    hrt.now(*a[:1])
    return []


def op_units(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    for f in (hrt.us, hrt.ms, hrt.s):
        try:
            f(a[0])
        except ALLOWED:
            pass
    return []


def op_timer(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    hrt.Timer(a[0], a[1])
    return []


def op_field(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    o = _field_target(a[0], a[1])
    return [o.start(a[2], slack=a[3])]


def op_start(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    return [Target().start(a[0], slack=a[1])]


def op_start_pinned(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    return [Target().start_pinned(a[0], slack=a[1])]


def op_start_scoped(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    Target().start_scoped(a[0], a[1], slack=a[2])
    return []


def op_scoped(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    with Target().scoped(a[0], slack=a[1]):
        pass
    return []


def op_forward(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    t = Target()
    t.timer.forward(a[0], a[1])
    t.timer.forward_now(a[2])
    return []


def op_forward_queued(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    t = Target()
    h = t.start(hrt.s(60))
    try:
        t.timer.forward(a[0], a[1])
    finally:
        h.cancel()
    return []


def op_call_later(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    return [hrt.call_later(a[0], a[1], slack=a[2], hard=a[3])]


def op_call_at(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    return [hrt.call_at(a[0], a[1], clock=a[2], slack=a[3], hard=a[4])]


def op_call_every(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    return [hrt.call_every(a[0], a[1], slack=a[2], hard=a[3])]


def op_sleep(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    if not short_wait(a[0]):
        hrt.sleep(a[0], a[1])
    return []


def op_sleep_until(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    d, v = a[0], as_int(a[0])
    if v is not None and INT64_MIN <= v <= INT64_MAX:
        d = min(v, hrt.now() + 1000)  # valid deadlines: at most 1 us away
    hrt.sleep_until(d, a[1])
    return []


def op_manual(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    mc = ManualClock(a[0])
    out: list[Any] = []
    for f in (lambda: mc.now(a[1]), lambda: mc.advance(a[2]), lambda: mc.shift_realtime(a[3]),
              lambda: mc.timer(a[4], a[1]), lambda: mc.stats(a[5])):
        try:
            f()
        except ALLOWED:
            pass
    t = Target()
    mc.attach(t)
    out.append(t.start(a[2], slack=a[3]))
    mc.advance(10)
    out.append(mc.call_later(a[2], a[6]))
    return out


def op_attach(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    ManualClock(0).attach(a[0])
    return []


def op_ctimer(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    t = hrt.CTimer(a[0], a[1], a[2], a[3])
    t.start(a[4], slack=a[5])
    return [t]


def op_latency(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    r = hrt.LatencyRecorder(a[0], interval=a[1], mode=a[2], clock=a[3])
    r.start(a[4], slack=a[5])
    return [r]


def op_counter(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    c = hrt.ExpiryCounter(interval=a[0], limit=a[1], mode=a[2], clock=a[3])
    c.start(a[4], slack=a[5])
    return [c]


def op_eventfd(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    e = hrt.EventfdTimer(interval=a[0], mode=a[1], clock=a[2])
    e.start(a[3], slack=a[4])
    return [e]


def op_stats(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    hrt.expiry_stats(a[0])
    return []


def op_handle_misc(a: list[Any], kw: dict[str, Any]) -> list[Any]:
    h = Target().start(hrt.s(60))
    try:
        h.detach()
        repr(h)
        h.timer.remaining()
        h.timer.is_active()
    finally:
        h.cancel()
    return []


# Valid values per argument position; each is replaced by junk (ANY) with
# probability 1/3, so junk meets every argument with the others valid.
CLOCK = st.sampled_from(list(hrt.ClockId))
MODE = st.sampled_from([
    hrt.TimerMode.REL, hrt.TimerMode.ABS, hrt.TimerMode.REL | hrt.TimerMode.HARD,
    hrt.TimerMode.REL | hrt.TimerMode.SOFT, hrt.TimerMode.ABS | hrt.TimerMode.HARD,
])
NS = st.one_of(st.just(0), st.integers(0, 10**6))
POS = st.integers(1000, 10**6)
ANYINT = st.integers(INT64_MIN, INT64_MAX)
BOOL = st.booleans()
FN = st.sampled_from([_noop, lambda: 1, len])
BUILTIN = st.sampled_from(["latency", "count", "eventfd"])

OPS: dict[str, tuple[Op, list[Any]]] = {
    "now": (op_now, [CLOCK]),
    "units": (op_units, [st.floats(-1e6, 1e6)]),
    "timer": (op_timer, [MODE, CLOCK]),
    "field": (op_field, [MODE, CLOCK, NS, NS]),
    "start": (op_start, [NS, NS]),
    "start_pinned": (op_start_pinned, [NS, NS]),
    "start_scoped": (op_start_scoped, [NS, FN, NS]),
    "scoped": (op_scoped, [NS, NS]),
    "forward": (op_forward, [ANYINT, POS, POS]),
    "forward_queued": (op_forward_queued, [ANYINT, POS]),
    "call_later": (op_call_later, [NS, FN, NS, BOOL]),
    "call_at": (op_call_at, [NS, FN, CLOCK, NS, BOOL]),
    "call_every": (op_call_every, [POS, FN, NS, BOOL]),
    "sleep": (op_sleep, [st.integers(0, 1000), CLOCK]),
    "sleep_until": (op_sleep_until, [ANYINT, CLOCK]),
    "manual": (op_manual, [NS, CLOCK, NS, ANYINT, MODE, BOOL, FN]),
    "attach": (op_attach, [st.builds(Target)]),
    "ctimer": (op_ctimer, [BUILTIN, st.none(), MODE, CLOCK, NS, NS]),
    "latency": (op_latency, [st.integers(1, 1000), NS, MODE, CLOCK, NS, NS]),
    "counter": (op_counter, [NS, NS, MODE, CLOCK, NS, NS]),
    "eventfd": (op_eventfd, [NS, MODE, CLOCK, NS, NS]),
    "stats": (op_stats, [BOOL]),
    "handle_misc": (op_handle_misc, []),
}


def _cancel_all(armed: list[Any]) -> None:
    for x in armed:
        if hasattr(x, "close"):
            x.close()
        elif hasattr(x, "cancel"):
            x.cancel()


IN_CHILD = os.environ.get("HRT_FUZZ_CHILD") == "1"
EXAMPLES = 20000 if os.environ.get("HRT_STRESS_LONG") == "1" else 2000

if IN_CHILD:

    @settings(max_examples=EXAMPLES, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(name=st.sampled_from(sorted(OPS)), data=st.data())
    def test_public_api_with_random_arguments(name: str, data: st.DataObject) -> None:
        fn, valid = OPS[name]
        args = [data.draw(st.one_of(v, v, ANY), label=f"arg{i}") for i, v in enumerate(valid)]
        args += [data.draw(ANY, label="spare")] * (7 - len(args))
        # the last line names the call if the interpreter dies in it
        print(f"FUZZ {name} {args!r}", flush=True)
        unraisable: list[Any] = []
        old = sys.unraisablehook
        sys.unraisablehook = unraisable.append
        armed: list[Any] = []
        try:
            armed = fn(args, {})
            event(f"{name}: accepted")
            if armed:
                hrt.sleep(hrt.us(300))  # let what is due fire before the cancel
        except ALLOWED as e:
            event(f"{name}: {type(e).__name__}")
        finally:
            _cancel_all(armed)
            sys.unraisablehook = old
        # a callback that raised reports there; never an error of the package itself
        for u in unraisable:
            assert not u.exc_type.__module__.startswith("hrtimer_cffi"), u

else:

    def test_public_api_with_random_arguments() -> None:
        env = dict(os.environ, HRT_FUZZ_CHILD="1")
        cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:randomly",
               "--hypothesis-show-statistics",
               f"{__file__}::test_public_api_with_random_arguments"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        calls = [ln for ln in proc.stdout.splitlines() if ln.startswith("FUZZ ")]
        rest = "\n".join(ln for ln in (proc.stdout + proc.stderr).splitlines()
                         if not ln.startswith("FUZZ "))
        assert proc.returncode == 0, (
            f"child pytest exit {proc.returncode}; last calls:\n" + "\n".join(calls[-3:])
            + f"\n{rest[-20000:]}"
        )
        assert "1 passed" in rest, rest[-5000:]
        print(f"{len(calls)} calls with random arguments")
