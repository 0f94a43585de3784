"""Model-based test of the timer core on a ManualClock.

A hypothesis state machine drives several ``HasTimer`` objects attached to one
``ManualClock`` (REL and ABS, HARD and SOFT, all four clocks, with slack)
through start / cancel / try_to_cancel / forward / advance / shift_realtime /
handle drop, and through callbacks that forward and return RESTART, return
NO_RESTART, cancel or re-arm themselves, start / cancel / forward other
timers, try to advance the clock, or raise. A plain-Python reference model
(sorted lists, no tree) predicts every return code, every callback (order,
``ctx.now``, expiry seen) and, after every step, each timer's
``is_active`` / ``is_queued`` / ``is_callback_running`` / ``expires`` /
``soft_expires`` / ``remaining()`` and the clocks.

The model follows Linux's ``__hrtimer_run_queues``: HARD context first, then
SOFT; within a context the clock bases in the core's order (MONOTONIC,
REALTIME, BOOTTIME, TAI); within a base, pop the earliest hard expiry while
its soft expiry has passed; equal expiries leave in arming order; RESTART
re-queues unless the callback re-armed or cancelled its timer. Two rules of
API.md section 4 go beyond Linux: a timer runs at most once per expiry run
(one still due after its callback, by RESTART without forward or a re-arm in
the past, is skipped and runs at the next run), and forward counts from the
soft expiry (a timer run inside its slack window moves on by one interval).
``advance_jump()`` is one expiry run after the jump; ``advance()`` is one run
at each next hard expiry (as a MONOTONIC reading) later than the last stop,
up to the end, then one at the end; callback errors come out of both.
The machine covers slack windows, RESTART without forward, re-arms in the
past and clocks saturated at the int64 limit.
"""

from __future__ import annotations

import faulthandler
import os
import subprocess
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import hrtimer_cffi as hrt
from hrtimer_cffi.testing import ManualClock

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup
else:  # pragma: no cover (3.10)
    from exceptiongroup import BaseExceptionGroup

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

# The core's clock-base order inside one context.
BASE_ORDER = (hrt.ClockId.MONOTONIC, hrt.ClockId.REALTIME, hrt.ClockId.BOOTTIME, hrt.ClockId.TAI)
SHIFTED = (hrt.ClockId.REALTIME, hrt.ClockId.TAI)

class _Watchdog:
    """Ends the process, with every thread's traceback, if one ``advance()``
    does not return within ``limit`` seconds. A core that loops inside C (a
    corrupt queue) may hold the GIL, so only faulthandler's own thread can
    stop it; it must fail the run rather than hang it. (This replaces
    pytest's faulthandler_timeout, if set, for the rest of the test.)"""

    def __init__(self, limit: float = 60.0) -> None:
        self.limit = limit

    def __enter__(self) -> None:
        faulthandler.dump_traceback_later(self.limit, exit=True)

    def __exit__(self, *exc: object) -> None:
        faulthandler.cancel_dump_traceback_later()


_WATCHDOG = _Watchdog()

# A guard against a core that loops: callbacks stop acting after this many
# runs within one advance (the model never gets near it).
RUN_LIMIT = 2000


def sat(x: int) -> int:
    return max(INT64_MIN, min(INT64_MAX, x))


def forward_math(expires: int, soft: int, now: int, interval: int) -> tuple[int, int, int]:
    """Linux hrtimer_forward on (hard, soft) expiry counted from the soft one,
    in exact integers: add the fewest whole intervals that put the soft expiry
    after ``now``; the count and both expiries saturate at INT64_MAX."""
    if now < soft:
        return 0, expires, soft
    n = (now - soft) // interval + 1
    return min(n, INT64_MAX), sat(expires + n * interval), sat(soft + n * interval)


# ---------------------------------------------------------------- plans
#
# What a callback does, as data, so the real callback and the model run the
# same script. Actions:
#   ("fwd", interval, use_now)   ctx.forward(ctx.now, i) / ctx.forward_now(i)
#   ("cancel_self",)             handle of this timer: cancel() -> bool
#   ("try_self",)                try_to_cancel() -> -1 while running
#   ("rearm_self", delay, slack) start() this timer again from its callback
#   ("rearm_past", back, slack)  ABS: start() at ctx.now - back (REL: 0)
#   ("start", j, delay, slack)   start() timer j
#   ("cancel", j) / ("try", j)   cancel / try_to_cancel timer j
#   ("fwd_other", j, off, i)     timer j .forward(now_j + off, i)
#   ("advance", d)               ManualClock.advance from a callback: refused
#   ("raise",)                   the callback raises (unraisablehook; no restart)
# Returns: "none" (None), "no" (NO_RESTART), "restart" (RESTART),
# "restart_if_future" (RESTART if the soft expiry is after ctx.now).

Action = tuple[Any, ...]


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    ret: str


DEFAULT_PLANS = {
    "once": Plan((), "none"),
    "no_restart": Plan((), "no"),
}


def periodic(interval: int, use_now: bool) -> Plan:
    return Plan((("fwd", interval, use_now),), "restart_if_future")


def tick(interval: int) -> Plan:
    """API.md section 4's Tick: forward_now, RESTART, whatever the slack."""
    return Plan((("fwd", interval, True),), "restart")


# ---------------------------------------------------------------- model


@dataclass(eq=False)
class MTimer:
    idx: int
    rel: bool
    hard: bool
    clock: hrt.ClockId  # the clock base it lives on
    expires: int = 0
    soft: int = 0
    queued: bool = False
    running: bool = False
    cancelled: bool = False
    plans: deque[Plan] = field(default_factory=deque)
    default: Plan = DEFAULT_PLANS["once"]
    gen: int = 0  # number of the newest start
    kept: set[int] = field(default_factory=set)  # starts whose handle is kept, not detached


class Model:
    def __init__(self, start: int) -> None:
        self.now = start
        self.shift = 0
        self.queues: dict[tuple[bool, hrt.ClockId], list[MTimer]] = {
            (h, c): [] for h in (True, False) for c in BASE_ORDER
        }
        self.timers: list[MTimer] = []
        self.in_callback = False
        self.log: list[tuple[Any, ...]] = []
        self.raised = 0

    def base_now(self, clock: hrt.ClockId) -> int:
        return sat(self.now + self.shift) if clock in SHIFTED else self.now

    def _dequeue(self, t: MTimer) -> None:
        self.queues[(t.hard, t.clock)].remove(t)
        t.queued = False

    def _enqueue(self, t: MTimer) -> None:
        q = self.queues[(t.hard, t.clock)]
        i = len(q)
        while i > 0 and q[i - 1].expires > t.expires:
            i -= 1
        q.insert(i, t)
        t.queued = True

    def start(self, t: MTimer, expires: int, slack: int) -> None:
        soft = sat(self.base_now(t.clock) + expires) if t.rel else expires
        if t.queued:
            self._dequeue(t)
        t.soft, t.expires = soft, sat(soft + slack)
        t.cancelled = False
        self._enqueue(t)
        t.gen += 1

    def try_to_cancel(self, t: MTimer) -> int:
        if t.running:
            return -1
        if t.queued:
            self._dequeue(t)
            return 1
        return 0

    def cancel(self, t: MTimer) -> bool:
        # Single-threaded: a running timer here is the caller's own callback.
        ret = False
        if t.queued:
            self._dequeue(t)
            ret = True
        if t.running:
            t.cancelled = True
        return ret

    def forward(self, t: MTimer, now: int, interval: int) -> int | str:
        if t.queued:
            return "TimerStateError"
        n, t.expires, t.soft = forward_math(t.expires, t.soft, now, interval)
        return n

    def mono(self, t: MTimer) -> int:
        """A timer's hard expiry as a reading of the MONOTONIC clock."""
        return sat(t.expires - self.shift) if t.clock in SHIFTED else t.expires

    def advance_step(self, delta: int) -> int:
        """ManualClock.advance: one expiry run at each next hard expiry in the
        window (none earlier than the last stop), then one at the end."""
        end = sat(self.now + delta)
        at = INT64_MIN
        ran = 0
        while True:
            stops = [self.mono(t) for q in self.queues.values() for t in q if self.mono(t) > at]
            if not stops or min(stops) > end:
                break
            at = max(min(stops), self.now)
            ran += self.advance(at - self.now)
        if at < end:
            ran += self.advance(end - self.now)
        return ran

    def advance(self, delta: int) -> int:
        """ManualClock.advance_jump: one expiry run after the jump."""
        self.now = sat(self.now + delta)
        ran = 0
        for hard in (True, False):
            done: set[int] = set()  # each timer runs at most once per context run
            for clock in BASE_ORDER:
                q = self.queues[(hard, clock)]
                run_now = self.base_now(clock)
                while True:
                    t = next((x for x in q if x.idx not in done), None)
                    if t is None or t.soft > run_now:
                        break
                    done.add(t.idx)
                    q.remove(t)
                    t.queued = False
                    t.cancelled = False
                    t.running = True
                    restart = self._run(t, run_now)
                    if restart and not t.queued and not t.cancelled:
                        self._enqueue(t)
                    t.running = False
                    ran += 1
        return ran

    def _run(self, t: MTimer, run_now: int) -> bool:
        plan = t.plans.popleft() if t.plans else t.default
        rec: list[Any] = [t.idx, run_now, t.expires, t.soft, t.queued, t.running, True]
        raised = False
        for a in plan.actions:
            kind = a[0]
            if kind == "fwd":
                rec.append(self.forward(t, run_now, a[1]))
            elif kind == "cancel_self":
                rec.append(self.cancel(t))
            elif kind == "try_self":
                rec.append(self.try_to_cancel(t))
            elif kind == "rearm_self":
                e = a[1] if t.rel else sat(run_now + a[1])
                self.start(t, e, a[2])
                rec.append(None)
            elif kind == "rearm_past":
                e = 0 if t.rel else sat(run_now - a[1])
                self.start(t, e, a[2])
                rec.append(None)
            elif kind == "start":
                o = self.timers[a[1]]
                e = a[2] if o.rel else sat(self.base_now(o.clock) + a[2])
                self.start(o, e, a[3])
                rec.append(None)
            elif kind == "cancel":
                rec.append(self.cancel(self.timers[a[1]]))
            elif kind == "try":
                rec.append(self.try_to_cancel(self.timers[a[1]]))
            elif kind == "fwd_other":
                o = self.timers[a[1]]
                rec.append(self.forward(o, sat(self.base_now(o.clock) + a[2]), a[3]))
            elif kind == "advance":
                rec.append("TimerStateError")
            elif kind == "raise":
                raised = True
                break
        self.log.append(tuple(rec))
        if raised:
            self.raised += 1
            return False
        if plan.ret == "restart":
            return True
        if plan.ret == "restart_if_future":
            return t.soft > run_now
        return False


# ---------------------------------------------------------------- the real side


class Planned(hrt.HasTimer):
    """A HasTimer whose callback runs the plan the machine gave it."""

    timer = hrt.TimerField()

    def __init__(self, machine: TimerMachine, idx: int) -> None:
        self.m = machine
        self.idx = idx
        self.plans: deque[Plan] = deque()
        self.default = DEFAULT_PLANS["once"]
        self.handles: list[hrt.TimerHandle] = []  # kept, not detached
        self.ctl: hrt.TimerHandle | None = None  # a detached handle for cancel()

    def arm(self, expires: int, slack: int, keep: bool = False) -> None:
        h = self.start(expires, slack=slack)
        if keep:
            self.handles.append(h)
            return
        h.detach()
        if self.ctl is None:
            self.ctl = h

    def cancel(self) -> bool:
        """cancel() through a handle; a timer never started has none yet."""
        return self.ctl.cancel() if self.ctl else self.timer._cancel()

    def try_to_cancel(self) -> int:
        return self.ctl.try_to_cancel() if self.ctl else self.timer._try_to_cancel()

    def run(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart | None:
        m = self.m
        m.runs_this_advance += 1
        if m.runs_this_advance > RUN_LIMIT:
            return None
        plan = self.plans.popleft() if self.plans else self.default
        tm = ctx.timer
        rec: list[Any] = [
            self.idx, ctx.now, tm.expires, tm.soft_expires,
            tm.is_queued(), tm.is_callback_running(), tm.is_active(),
        ]
        raised = False
        for a in plan.actions:
            if a[0] == "raise":
                raised = True
                break
            try:
                rec.append(self._act(a, ctx))
            except (hrt.TimerStateError, ValueError, TypeError) as e:
                rec.append(type(e).__name__)
        m.log.append(tuple(rec))
        if raised:
            raise RuntimeError("planned failure in a timer callback")
        if plan.ret == "none":
            return None
        if plan.ret == "no":
            return hrt.TimerRestart.NO_RESTART
        if plan.ret == "restart":
            return hrt.TimerRestart.RESTART
        assert plan.ret == "restart_if_future"
        return hrt.TimerRestart.RESTART if tm.soft_expires > ctx.now else None

    def _act(self, a: Action, ctx: hrt.CallbackContext) -> Any:
        m = self.m
        kind = a[0]
        if kind == "fwd":
            return ctx.forward_now(a[1]) if a[2] else ctx.forward(ctx.now, a[1])
        if kind == "cancel_self":
            return self.cancel()
        if kind == "try_self":
            return self.try_to_cancel()
        if kind == "rearm_self":
            e = a[1] if self.timer.mode & hrt.TimerMode.REL else ctx.now + a[1]
            self.arm(sat(e), a[2])
            return None
        if kind == "rearm_past":
            e = 0 if self.timer.mode & hrt.TimerMode.REL else ctx.now - a[1]
            self.arm(sat(e), a[2])
            return None
        if kind == "start":
            m.real_start(a[1], a[2], a[3], keep=False)
            return None
        if kind == "cancel":
            return m.objs[a[1]].cancel()
        if kind == "try":
            return m.objs[a[1]].try_to_cancel()
        if kind == "fwd_other":
            o = m.objs[a[1]].timer
            return o.forward(sat(m.mc.now(o.clock) + a[2]), a[3])
        if kind == "advance":
            return m.mc.advance(a[1])
        return None


MODES = st.sampled_from([
    hrt.TimerMode.REL,
    hrt.TimerMode.REL | hrt.TimerMode.SOFT,
    hrt.TimerMode.REL | hrt.TimerMode.HARD,
    hrt.TimerMode.ABS,
    hrt.TimerMode.ABS | hrt.TimerMode.HARD,
    hrt.TimerMode.ABS | hrt.TimerMode.SOFT,
])
CLOCKS = st.sampled_from(list(hrt.ClockId))
SMALL = st.integers(0, 60)
DELAY = st.one_of(SMALL, SMALL, SMALL, st.integers(0, 10**6), st.sampled_from([INT64_MAX, 2**62]))
OFFSET = st.one_of(st.integers(-30, 60), st.sampled_from([INT64_MIN // 2, 2**62]))
SLACK = st.one_of(st.just(0), st.integers(0, 20), st.sampled_from([INT64_MAX]))
INTERVAL = st.one_of(st.integers(1, 25), st.sampled_from([1, 10**9, INT64_MAX]))


class TimerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mc: ManualClock | None = None
        self.model: Model | None = None
        self.objs: list[Planned] = []
        self.log: list[tuple[Any, ...]] = []
        self.unraisable: list[Any] = []
        self.runs_this_advance = 0
        self._old_hook = sys.unraisablehook
        sys.unraisablehook = self.unraisable.append

    # -- helpers ---------------------------------------------------------

    @property
    def n(self) -> int:
        return len(self.objs)

    def real_start(self, i: int, delay: int, slack: int, keep: bool) -> None:
        o = self.objs[i]
        tm = o.timer
        e = delay if tm.mode & hrt.TimerMode.REL else sat(self.mc_().now(tm.clock) + delay)
        o.arm(e, slack, keep)

    def mc_(self) -> ManualClock:
        assert self.mc is not None
        return self.mc

    def model_(self) -> Model:
        assert self.model is not None
        return self.model

    def plan_strategy(self) -> st.SearchStrategy[Plan]:
        j = st.integers(0, self.n - 1)
        action = st.one_of(
            st.tuples(st.just("fwd"), INTERVAL, st.booleans()),
            st.tuples(st.just("cancel_self")),
            st.tuples(st.just("try_self")),
            st.tuples(st.just("rearm_self"), SMALL, SLACK),
            st.tuples(st.just("rearm_past"), SMALL, SLACK),
            st.tuples(st.just("start"), j, SMALL, SLACK),
            st.tuples(st.just("cancel"), j),
            st.tuples(st.just("try"), j),
            st.tuples(st.just("fwd_other"), j, OFFSET, INTERVAL),
            st.tuples(st.just("advance"), SMALL),
            st.tuples(st.just("raise")),
        )
        return st.builds(
            Plan,
            st.lists(action, max_size=3).map(tuple),
            st.sampled_from(["none", "no", "restart", "restart_if_future"]),
        )

    # -- setup -----------------------------------------------------------

    @initialize(
        start=st.one_of(st.integers(0, 1000), st.just(10**15), st.just(INT64_MAX - 50),
                        st.just(INT64_MAX)),
        specs=st.lists(st.tuples(MODES, CLOCKS), min_size=2, max_size=5),
    )
    def setup(self, start: int, specs: list[tuple[hrt.TimerMode, hrt.ClockId]]) -> None:
        self.mc = ManualClock(start)
        self.model = Model(start)
        for i, (mode, clock) in enumerate(specs):
            cls = type(f"Planned{i}", (Planned,), {"timer": hrt.TimerField(mode, clock)})
            o = cls(self, i)
            tm = self.mc.attach(o)
            rel = bool(mode & hrt.TimerMode.REL)
            base = tm.clock
            expected_base = (
                hrt.ClockId.MONOTONIC if rel and clock == hrt.ClockId.REALTIME else clock
            )
            assert base == expected_base, (mode, clock, base)
            self.objs.append(o)
            self.model.timers.append(
                MTimer(i, rel, bool(mode & hrt.TimerMode.HARD), base)
            )

    # -- rules -----------------------------------------------------------

    @rule(data=st.data(), delay=DELAY, slack=SLACK, keep=st.booleans())
    def start(self, data: st.DataObject, delay: int, slack: int, keep: bool) -> None:
        i = data.draw(st.integers(0, self.n - 1), label="timer")
        m = self.model_()
        t = m.timers[i]
        self.real_start(i, delay, slack, keep)
        m.start(t, delay if t.rel else sat(m.base_now(t.clock) + delay), slack)
        if keep:
            t.kept.add(t.gen)

    @rule(data=st.data(), delay=SMALL, slack=SLACK)
    def start_with_plan(self, data: st.DataObject, delay: int, slack: int) -> None:
        """Arm soon, with a script for the next callback (the common case)."""
        self.push_plan(data)
        i = data.draw(st.integers(0, self.n - 1), label="timer")
        m = self.model_()
        t = m.timers[i]
        self.real_start(i, delay, slack, keep=False)
        m.start(t, delay if t.rel else sat(m.base_now(t.clock) + delay), slack)

    @rule(data=st.data(), offset=OFFSET, slack=SLACK)
    def start_abs_anywhere(self, data: st.DataObject, offset: int, slack: int) -> None:
        """ABS timers may be armed in the past (they fire on the next advance)."""
        i = data.draw(st.integers(0, self.n - 1), label="timer")
        m = self.model_()
        t = m.timers[i]
        if t.rel:
            with pytest.raises(ValueError):
                self.objs[i].start(-1 - abs(offset) % 1000, slack=slack)
            return
        e = sat(m.base_now(t.clock) + offset)
        self.objs[i].arm(e, slack)
        m.start(t, e, slack)

    @rule(data=st.data(), bad=st.sampled_from([-1, 1.5, True, None, 2**63]))
    def start_invalid(self, data: st.DataObject, bad: Any) -> None:
        """Bad arguments raise before anything is armed: the state is unchanged."""
        i = data.draw(st.integers(0, self.n - 1), label="timer")
        o = self.objs[i]
        with pytest.raises((TypeError, ValueError)):
            if self.model_().timers[i].rel or bad != -1:
                o.start(bad)
            else:
                o.start(0, slack=bad)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, self.n - 1), label="timer")
        got = self.objs[i].cancel()
        assert got == self.model_().cancel(self.model_().timers[i])

    @rule(data=st.data())
    def try_to_cancel(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, self.n - 1), label="timer")
        got = self.objs[i].try_to_cancel()
        assert got == self.model_().try_to_cancel(self.model_().timers[i])

    @rule(data=st.data(), offset=OFFSET, interval=INTERVAL)
    def forward(self, data: st.DataObject, offset: int, interval: int) -> None:
        i = data.draw(st.integers(0, self.n - 1), label="timer")
        m = self.model_()
        t = m.timers[i]
        now = sat(m.base_now(t.clock) + offset)
        try:
            got: int | str = self.objs[i].timer.forward(now, interval)
        except hrt.TimerStateError:
            got = "TimerStateError"
        assert got == m.forward(t, now, interval)

    @rule(data=st.data())
    def drop_handles(self, data: st.DataObject) -> None:
        """Dropping the kept handles: only the newest start's handle cancels."""
        i = data.draw(st.integers(0, self.n - 1), label="timer")
        self.objs[i].handles.clear()
        t = self.model_().timers[i]
        if t.gen in t.kept:
            self.model_().cancel(t)
        t.kept.clear()

    @rule(data=st.data())
    def push_plan(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, self.n - 1), label="timer")
        plan = data.draw(self.plan_strategy(), label="plan")
        self.objs[i].plans.append(plan)
        self.model_().timers[i].plans.append(plan)

    @rule(data=st.data(), kind=st.sampled_from(["once", "no_restart", "periodic", "tick"]),
          interval=st.integers(1, 30), use_now=st.booleans())
    def set_default(self, data: st.DataObject, kind: str, interval: int, use_now: bool) -> None:
        i = data.draw(st.integers(0, self.n - 1), label="timer")
        if kind == "periodic":
            plan = periodic(interval, use_now)
        elif kind == "tick":
            plan = tick(interval)
        else:
            plan = DEFAULT_PLANS[kind]
        self.objs[i].default = plan
        self.model_().timers[i].default = plan

    @rule(extra=st.sampled_from([0, 0, 0, 1, 5]), jump=st.booleans())
    def advance_to_next(self, extra: int, jump: bool) -> None:
        """Advance exactly to the earliest soft expiry (the boundary case), or a little past."""
        m = self.model_()
        gaps = [t.soft - m.base_now(t.clock) for t in m.timers if t.queued]
        if gaps:
            self._advance(sat(max(0, min(gaps)) + extra), jump or min(gaps) > 100)

    @rule(delta=st.one_of(st.integers(0, 80), st.sampled_from([0, 1, 1000, 2**62, INT64_MAX])))
    def advance_jump(self, delta: int) -> None:
        self._advance(delta, jump=True)

    # A stop per distinct deadline: a window of at most 100 ns keeps every
    # timer's runs below RUN_LIMIT.
    @rule(delta=st.integers(0, 100))
    def advance(self, delta: int) -> None:
        self._advance(delta, jump=False)

    def _advance(self, delta: int, jump: bool) -> None:
        m = self.model_()
        self.log.clear()
        m.log.clear()
        self.runs_this_advance = 0
        n_unraisable = len(self.unraisable)
        mc = self.mc_()
        errors: list[BaseException] = []
        got: int | None = None
        with _WATCHDOG:
            try:
                got = mc.advance_jump(delta) if jump else mc.advance(delta)
            except BaseExceptionGroup as eg:
                errors = list(eg.exceptions)
            except Exception as e:
                errors = [e]
        if jump:
            assert self.runs_this_advance <= self.n, "a timer ran twice in one advance"
        want = m.advance(delta) if jump else m.advance_step(delta)
        assert self.log == m.log
        assert got is None or got == want
        # Callback errors come out of advance(), none reach the hook.
        assert len(self.unraisable) == n_unraisable
        assert len(errors) == m.raised
        m.raised = 0
        for e in errors:
            assert isinstance(e, RuntimeError)

    @precondition(lambda self: self.model is not None)
    @rule(delta=st.integers(-50, 50))
    def shift_realtime(self, delta: int) -> None:
        self.mc_().shift_realtime(delta)
        self.model_().shift += delta

    # -- invariants ------------------------------------------------------

    @invariant()
    def state_matches(self) -> None:
        if self.model is None:
            return
        m = self.model
        mc = self.mc_()
        for c in hrt.ClockId:
            assert mc.now(c) == m.base_now(c), c
        for o, t in zip(self.objs, m.timers, strict=True):
            tm = o.timer
            got = (tm.is_active(), tm.is_queued(), tm.is_callback_running(),
                   tm.expires, tm.soft_expires, tm.remaining(), tm.clock)
            want = (t.queued or t.running, t.queued, t.running, t.expires, t.soft,
                    sat(t.expires - m.base_now(t.clock)), t.clock)
            assert got == want, f"timer {t.idx}"

    def teardown(self) -> None:
        sys.unraisablehook = self._old_hook
        self.unraisable.clear()
        # Break the reference cycles through the timers (objects <-> machine).
        for o in self.objs:
            o.handles.clear()
            o.cancel()
            o.ctl = None
            o.plans.clear()
            o.m = None  # type: ignore[assignment]
        self.objs.clear()
        self.mc = None


LONG = os.environ.get("HRT_STRESS_LONG") == "1"

TimerMachine.TestCase.settings = settings(
    max_examples=4000 if LONG else 400,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
# The machine runs in a child pytest: a core that crashes or loops fails
# this test (with the child's output: hypothesis's shrunk example, or the
# watchdog's tracebacks) instead of killing or hanging the test run.
IN_CHILD = os.environ.get("HRT_MODEL_CHILD") == "1"

if IN_CHILD:
    test_timer_model = TimerMachine.TestCase
else:

    def test_timer_model() -> None:
        env = dict(os.environ, HRT_MODEL_CHILD="1")
        cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:randomly",
               f"{__file__}::test_timer_model"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=3600 if LONG else 900)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"child pytest exit {proc.returncode}\n{out[-20000:]}"
        assert " passed" in out, out[-5000:]


# ---------------------------------------------------------------- fixed scenarios
# A few hand-written runs of the same machinery, so a regression in a basic
# rule names itself without a shrink.


class _Rec(hrt.HasTimer):
    timer = hrt.TimerField(mode=hrt.TimerMode.ABS)

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def run(self, ctx: hrt.CallbackContext) -> None:
        self.log.append(self.name)


def test_equal_expiries_fire_in_arming_order() -> None:
    mc = ManualClock(0)
    log: list[str] = []
    objs = [_Rec(str(i), log) for i in range(8)]
    for o in objs:
        mc.attach(o)
    order = [3, 1, 7, 0, 5, 2, 6, 4]
    for i in order:
        objs[i].start(100).detach()
    objs[order[0]].start(100).detach()  # re-arming moves it behind the others
    assert mc.advance(100) == 8
    assert log == [str(i) for i in order[1:] + order[:1]]


def test_try_to_cancel_from_own_callback_is_minus_one() -> None:
    mc = ManualClock(0)
    seen: list[int] = []

    class Self(hrt.HasTimer):
        timer = hrt.TimerField()

        def run(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart:
            seen.append(h.try_to_cancel())
            ctx.forward_now(10)
            return hrt.TimerRestart.RESTART

    o = Self()
    mc.attach(o)
    h = o.start(10)
    assert mc.advance(10) == 1
    assert seen == [-1]
    assert o.timer.is_queued() and o.timer.expires == 20
    assert h.cancel() is True


def test_rearm_from_callback_wins_over_restart() -> None:
    mc = ManualClock(0)

    class Rearm(hrt.HasTimer):
        timer = hrt.TimerField()

        def run(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart:
            self.start(50).detach()
            return hrt.TimerRestart.RESTART  # would re-queue at 10 if honoured

    o = Rearm()
    mc.attach(o)
    o.start(10).detach()
    assert mc.advance(10) == 1
    assert o.timer.is_queued() and o.timer.expires == 60
    assert mc.advance(49) == 0
    o.timer._cancel()
