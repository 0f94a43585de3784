"""Timer, TimerField/HasTimer, CallbackContext: introspection, slack, the state
vocabulary, SOFT vs HARD contexts, callback errors, and the docs' promises."""

from __future__ import annotations

import inspect
import itertools
import threading
import time
from typing import Any

import pytest

import hrtimer_cffi as hrt
from hrtimer_cffi import arc, calls, errors, pin, scoped
from hrtimer_cffi import timer as timer_mod
from hrtimer_cffi.testing import ManualClock

WAIT = 5.0
REL, ABS = hrt.TimerMode.REL, hrt.TimerMode.ABS
HARD, SOFT = hrt.TimerMode.HARD, hrt.TimerMode.SOFT


class Recorder(hrt.HasTimer):
    """Records, per call, what the callback saw."""

    timer = hrt.TimerField(mode=REL)

    def __init__(self, restart: hrt.TimerRestart | None = None) -> None:
        self.seen: list[dict[str, Any]] = []
        self.restart = restart
        self.fired = threading.Event()
        self.action: Any = None

    def run(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart | None:
        tm = ctx.timer
        self.seen.append(
            {
                "ctx_now": ctx.now,
                "clock_now": hrt.now(tm.clock),
                "soft": tm.soft_expires,
                "hard": tm.expires,
                "remaining": tm.remaining(),
                "queued": tm.is_queued(),
                "running": tm.is_callback_running(),
                "active": tm.is_active(),
                "thread": threading.get_ident(),
                "timer": tm,
            }
        )
        result = self.restart
        if self.action is not None:
            result = self.action(self, ctx)
        self.fired.set()
        return result


class HardRecorder(Recorder):
    timer = hrt.TimerField(mode=REL | HARD)


class AbsRecorder(Recorder):
    timer = hrt.TimerField(mode=ABS)


# ---------------------------------------------------------------- introspection


def test_introspection_of_an_armed_timer() -> None:
    r = Recorder()
    tm = r.timer
    assert isinstance(tm, hrt.Timer) and r.timer is tm
    assert not tm.is_active() and not tm.is_queued() and not tm.is_callback_running()
    before = hrt.now()
    h = r.start(hrt.s(10), slack=hrt.us(50))
    after = hrt.now()
    assert before + hrt.s(10) <= tm.soft_expires <= after + hrt.s(10)
    assert tm.expires - tm.soft_expires == hrt.us(50)
    assert 0 < tm.remaining() <= tm.expires - before
    assert tm.is_active() and tm.is_queued() and not tm.is_callback_running()
    assert tm.now() >= after
    assert "queued" in repr(tm) and "MONOTONIC" in repr(tm)
    h.cancel()
    assert not tm.is_active() and "stopped" in repr(tm)
    assert tm.expires - tm.soft_expires == hrt.us(50), "cancel keeps the expiry"


def test_introspection_inside_the_callback_manual_clock() -> None:
    mc = ManualClock()
    r = Recorder()
    mc.attach(r)
    h = r.start(100, slack=20)
    assert r.timer.remaining() == 120 and r.timer.now() == 0
    assert mc.advance(99) == 0, "not due before the soft expiry"
    assert mc.advance_jump(31) == 1                     # a late run: 10 ns overdue
    (seen,) = r.seen
    assert seen["ctx_now"] == 130 and seen["soft"] == 100 and seen["hard"] == 120
    assert seen["remaining"] == -10, "negative when overdue"
    assert seen["running"] and seen["active"] and not seen["queued"]
    assert not r.timer.is_active()
    del h


def test_restart_of_an_armed_timer_moves_it() -> None:
    r = Recorder()
    h1 = r.start(hrt.s(10))
    e1 = r.timer.expires
    h2 = r.start(hrt.s(20))
    assert r.timer.expires - e1 >= hrt.s(10) - hrt.ms(500)
    assert r.timer.is_queued()
    assert h2.cancel() is True and not r.timer.is_active()
    del h1


def test_relative_realtime_timer_runs_on_monotonic() -> None:
    # As Linux: a relative timer must not follow wall-clock jumps.
    assert hrt.Timer(REL, hrt.ClockId.REALTIME).clock is hrt.ClockId.MONOTONIC
    assert hrt.Timer(ABS, hrt.ClockId.REALTIME).clock is hrt.ClockId.REALTIME
    assert hrt.Timer(ABS, hrt.ClockId.TAI).clock is hrt.ClockId.TAI
    assert hrt.Timer(REL, hrt.ClockId.BOOTTIME).clock is hrt.ClockId.BOOTTIME


@pytest.mark.parametrize("mode", [REL | HARD, REL | SOFT], ids=["HARD", "SOFT"])
def test_callbacks_never_run_before_the_soft_expiry(mode: hrt.TimerMode) -> None:
    cls = HardRecorder if mode & HARD else Recorder
    targets = [cls() for _ in range(20)]
    handles = [t.start(hrt.us(300 * (i + 1)), slack=hrt.us(100 * (i % 3))) for i, t in
               enumerate(targets)]
    for t in targets:
        assert t.fired.wait(WAIT)
    for t in targets:
        (seen,) = t.seen
        assert seen["ctx_now"] >= seen["soft"], "ran before its soft expiry"
        assert seen["clock_now"] >= seen["ctx_now"]
    del handles


def test_slack_lets_timers_share_an_expiry_run() -> None:
    # A: soft 100, hard 200; B: 150. B's expiry is the first hard one, and
    # its run takes A too, since A's soft expiry has passed.
    mc = ManualClock()
    a, b = Recorder(), Recorder()
    mc.attach(a)
    mc.attach(b)
    ha, hb = a.start(100, slack=100), b.start(150)
    assert mc.advance(149) == 0
    assert mc.advance(1) == 2
    assert a.seen[0]["ctx_now"] == b.seen[0]["ctx_now"] == 150
    del ha, hb


def test_schedule_names_are_the_start_names() -> None:
    assert hrt.HasTimer.schedule is hrt.HasTimer.start
    assert hrt.HasTimer.schedule_scoped is hrt.HasTimer.start_scoped


# ---------------------------------------------------------------- states


def test_state_vocabulary_is_documented() -> None:
    doc = hrt.__doc__ or ""
    for word in ("Stopped", "Queued", "Running", "start", "cancel", "restart", "expire",
                 "is_active()", "is_queued()", "is_callback_running()"):
        assert word in doc, word


def test_state_transitions_as_documented() -> None:
    mc = ManualClock()
    r = Recorder()
    mc.attach(r)
    tm = r.timer
    state = tm._state
    assert state() == "stopped"
    h = r.start(10)                                     # start: Stopped -> Queued
    assert state() == "queued"
    assert h.cancel() is True and state() == "stopped"  # cancel: Queued -> Stopped
    h = r.start(10)
    h = r.start(20)                                     # start re-arms a Queued timer
    assert state() == "queued" and tm.expires == 20

    mc.advance(20)                                      # expire: Queued -> Running
    assert r.seen[-1]["running"] and not r.seen[-1]["queued"]
    assert state() == "stopped"                         # NO_RESTART: Running -> Stopped

    def periodic(self: Recorder, ctx: hrt.CallbackContext) -> hrt.TimerRestart:
        ctx.forward_now(10)
        return hrt.TimerRestart.RESTART

    r.action = periodic
    h = r.start(10)
    mc.advance(10)                                      # restart: Running -> Queued
    assert state() == "queued" and tm.expires == mc.now() + 10

    def rearm(self: Recorder, ctx: hrt.CallbackContext) -> None:
        self.kept = self.start(100)                     # start from the callback
        self.seen[-1]["after_start"] = (tm.is_callback_running(), tm.is_queued())

    r.action = rearm
    mc.advance(10)
    assert r.seen[-1]["after_start"] == (True, True)    # Running and Queued again
    assert state() == "queued"
    r.kept.cancel()
    assert state() == "stopped"
    del h


# ---------------------------------------------------------------- contexts


class SlowSoft(hrt.HasTimer):
    timer = hrt.TimerField(mode=REL | SOFT)

    def __init__(self, block: float) -> None:
        self.block = block
        self.entered = threading.Event()
        self.span: tuple[int, int] = (0, 0)
        self.thread = 0

    def run(self, ctx: hrt.CallbackContext) -> None:
        begin = hrt.now()
        self.thread = threading.get_ident()
        self.entered.set()
        time.sleep(self.block)
        self.span = (begin, hrt.now())


def test_a_slow_soft_callback_never_delays_hard_timers() -> None:
    hard_ticks: list[tuple[int, int]] = []
    soft_probe: list[int] = []
    slow = SlowSoft(0.3)
    h = slow.start(0)
    assert slow.entered.wait(WAIT)
    ticker = hrt.call_every(
        hrt.ms(5), lambda: hard_ticks.append((hrt.now(), threading.get_ident())), hard=True
    )
    hrt.call_later(hrt.ms(10), lambda: soft_probe.append(hrt.now()))
    deadline = time.monotonic() + WAIT
    while slow.span == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    ticker.cancel()
    begin, end = slow.span
    assert end - begin >= hrt.ms(290)
    during = [t for t, _ in hard_ticks if begin <= t <= end]
    # About 60 ticks are due in 300 ms; a HARD timer held up by the SOFT
    # callback would show none.
    assert len(during) >= 15, f"only {len(during)} HARD callbacks during the slow SOFT one"
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert max(gaps) < hrt.ms(150), "a HARD timer waited for the SOFT callback"
    assert slow.thread not in {tid for _, tid in hard_ticks}
    assert slow.thread != threading.get_ident()
    # SOFT timers share one dispatch thread: the probe waited for the slow one.
    assert wait_for(lambda: bool(soft_probe))
    assert soft_probe[0] >= end
    del h


def wait_for(pred: Any, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def test_hard_and_soft_run_on_their_own_threads() -> None:
    hard, soft = HardRecorder(), Recorder()
    hh, hs = hard.start(0), soft.start(0)
    assert hard.fired.wait(WAIT) and soft.fired.wait(WAIT)
    main = threading.get_ident()
    assert len({hard.seen[0]["thread"], soft.seen[0]["thread"], main}) == 3
    del hh, hs


@pytest.mark.parametrize(
    "make",
    [
        lambda: hrt.TimerField(mode=REL | hrt.TimerMode.PINNED),
        lambda: hrt.Timer(hrt.TimerMode.PINNED),
        lambda: hrt.Timer(REL | HARD | hrt.TimerMode.PINNED),
        lambda: ManualClock().timer(hrt.TimerMode.PINNED),
    ],
    ids=["TimerField", "Timer", "Timer-HARD", "ManualClock.timer"],
)
def test_pinned_mode_is_rejected_clearly(make: Any) -> None:
    with pytest.raises(ValueError, match=r"TimerMode\.PINNED is not supported"):
        make()


# ---------------------------------------------------------------- callback errors


class Failing(hrt.HasTimer):
    timer = hrt.TimerField(mode=REL)

    def __init__(self, result: Any = None, exc: BaseException | None = None) -> None:
        self.calls = 0
        self.result = result
        self.exc = exc
        self.done = threading.Event()

    def run(self, ctx: hrt.CallbackContext) -> Any:
        self.calls += 1
        ctx.forward_now(hrt.ms(1))
        self.done.set()
        if self.exc is not None:
            raise self.exc
        return self.result


class HardFailing(Failing):
    timer = hrt.TimerField(mode=REL | HARD)


@pytest.mark.parametrize("kind", ["HARD", "SOFT"])
@pytest.mark.parametrize(
    "result, exc, error",
    [
        (hrt.TimerRestart.RESTART, ValueError("boom"), ValueError),
        ("yes", None, TypeError),
        (True, None, TypeError),
    ],
    ids=["raises", "returns-str", "returns-bool"],
)
def test_callback_error_goes_to_unraisablehook(
    kind: str, result: Any, exc: BaseException | None, error: type[BaseException],
    unraisable: list[Any],
) -> None:
    keeps_going = hrt.call_every(hrt.ms(1), lambda: None, hard=kind == "HARD")
    f = (HardFailing if kind == "HARD" else Failing)(result, exc)
    h = f.start(0)
    assert f.done.wait(WAIT)
    runs = keeps_going.target.runs
    assert wait_for(lambda: len(unraisable) >= 1)
    assert wait_for(lambda: keeps_going.target.runs >= runs + 5), "other timers stopped"
    time.sleep(0.02)
    assert f.calls == 1, "a failed callback must not restart its timer"
    assert not f.timer.is_active()
    keeps_going.cancel()
    (args,) = [a for a in unraisable if a.object.target is f]
    assert isinstance(args.exc_value, error)
    if exc is None:
        assert "must return a TimerRestart or None" in str(args.exc_value)
    assert repr(args.object) == f"timer callback of {f!r}"
    del h


# ---------------------------------------------------------------- HasTimer, TimerField


def test_timer_field_gives_each_instance_its_own_timer() -> None:
    a, b = Recorder(), Recorder()
    assert a.timer is a.timer and a.timer is not b.timer
    assert isinstance(Recorder.timer, hrt.TimerField)
    assert Recorder.timer.mode == REL and Recorder.timer.clock is hrt.ClockId.MONOTONIC
    assert "TimerField" in repr(Recorder.timer)


def test_timer_field_first_access_is_thread_safe() -> None:
    for _ in range(20):
        r = Recorder()
        barrier = threading.Barrier(4)
        got: list[hrt.Timer] = []

        def grab(
            r: Recorder = r, barrier: threading.Barrier = barrier, got: list[hrt.Timer] = got
        ) -> None:
            barrier.wait()
            got.append(r.timer)

        threads = [threading.Thread(target=grab) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(t) for t in got}) == 1


def test_timer_field_is_read_only() -> None:
    r = Recorder()
    h = r.start(hrt.s(60))
    with pytest.raises(AttributeError, match="read-only"):
        r.timer = hrt.Timer()  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        del r.timer
    assert r.timer.is_queued()
    h.cancel()


def test_has_timer_declaration_errors() -> None:
    with pytest.raises(TypeError, match="more than one TimerField"):
        class Two(hrt.HasTimer):
            a = hrt.TimerField()
            b = hrt.TimerField()

    class NoField(hrt.HasTimer):
        def run(self, ctx: hrt.CallbackContext) -> None:
            return None

    with pytest.raises(TypeError, match="has no TimerField"):
        NoField().start(hrt.ms(1))

    class NoRun(hrt.HasTimer):
        timer = hrt.TimerField()

    nr = NoRun()
    with pytest.raises(TypeError, match="must implement run"):
        nr.start(hrt.ms(1))
    with pytest.raises(TypeError, match="must implement run"):
        nr.start_scoped(hrt.ms(1), lambda: None)
    assert not nr.timer.is_active()

    class Sub(Recorder):       # inherits the field and run
        pass

    s = Sub()
    h = s.start(hrt.s(60))
    assert s.timer.is_queued()
    h.cancel()


def test_timer_callback_protocol() -> None:
    assert isinstance(Recorder(), hrt.TimerCallback)
    assert not isinstance(object(), hrt.TimerCallback)


def test_callback_context() -> None:
    mc = ManualClock()
    r = Recorder()
    mc.attach(r)
    got: dict[str, Any] = {}

    def action(self: Recorder, ctx: hrt.CallbackContext) -> None:
        got["timer"] = ctx.timer
        got["now"] = ctx.now
        got["forward"] = ctx.forward(ctx.now, 7)
        got["forward_now"] = ctx.forward_now(7)
        got["repr"] = repr(ctx)

    r.action = action
    h = r.start(10)
    mc.advance_jump(25)                                 # a late run, at 25
    assert got["timer"] is r.timer and got["now"] == 25
    assert got["forward"] == 3 and got["forward_now"] == 0   # 10 -> 31, then after 25
    assert "CallbackContext now=25" in got["repr"]
    del h


# ---------------------------------------------------------------- documentation


def _public_names() -> list[tuple[str, Any]]:
    mods = (timer_mod, arc, pin, scoped, calls, errors)
    out: list[tuple[str, Any]] = []
    for name in ("ClockId", "TimerMode", "TimerRestart", "now", "us", "ms", "s",
                 "call_later", "call_at", "call_every"):
        out.append((name, getattr(hrt, name)))
    for mod in mods:
        for name in mod.__all__:
            obj = getattr(mod, name)
            out.append((f"{mod.__name__}.{name}", obj))
            if inspect.isclass(obj) and obj.__module__ == mod.__name__:
                for attr, value in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if inspect.isfunction(value) or isinstance(value, property):
                        out.append((f"{mod.__name__}.{name}.{attr}", value))
    return out


@pytest.mark.parametrize("name, obj", _public_names(), ids=[n for n, _ in _public_names()])
def test_public_names_document_what_they_raise(name: str, obj: Any) -> None:
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{name} has no docstring"
    assert "raise" in doc.lower(), f"{name}'s docstring does not say what it raises"


def test_package_exports_the_seed_names() -> None:
    for name in ("Timer", "HasTimer", "TimerHandle", "TimerPointer", "UnsafeTimerPointer",
                 "ScopedTimerPointer", "RawTimerCallback", "TimerCallback", "TimerRestart",
                 "TimerField", "CallbackContext", "TimerMode", "ClockId"):
        assert name in hrt.__all__ and hasattr(hrt, name), name
    assert {n: m.value for n, m in hrt.TimerMode.__members__.items()} == {
        "ABS": 0, "REL": 1, "PINNED": 2, "SOFT": 4, "HARD": 8}
    assert {c.name: c.value for c in hrt.ClockId} == {
        "REALTIME": 0, "MONOTONIC": 1, "BOOTTIME": 7, "TAI": 11}
    assert issubclass(hrt.TimerStateError, hrt.HrTimerError)
    assert issubclass(hrt.TimerStateError, RuntimeError)
