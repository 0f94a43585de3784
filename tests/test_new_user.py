"""What a new user trips on (issue 14): a dropped start() handle says so,
handles answer when()/cancelled(), calls carry their contextvars, call_every
takes first=/clock= and reports lateness, callback threads have names."""

from __future__ import annotations

import contextvars
import gc
import itertools
import logging
import threading
import time
import warnings
from typing import Any

import pytest

import hrtimer_cffi as hrt
from hrtimer_cffi.testing import ManualClock

WAIT = 5.0


class Obj(hrt.HasTimer):
    timer = hrt.TimerField()

    def __init__(self) -> None:
        self.fired = threading.Event()

    def run(self, ctx: hrt.CallbackContext) -> None:
        self.fired.set()

    def __repr__(self) -> str:
        return "<Obj the-target>"


def _resource_warnings(fn: Any) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fn()
        gc.collect()
    return [w for w in seen if issubclass(w.category, ResourceWarning)]


# ---------------------------------------------------------------- 14.1


def test_a_discarded_start_handle_warns_naming_the_target() -> None:
    o = Obj()

    def drop() -> None:
        o.start(hrt.s(10))  # result discarded: the drop cancels the timer

    (w,) = _resource_warnings(drop)
    msg = str(w.message)
    assert "<Obj the-target>" in msg and "cancelled" in msg
    assert w.filename == __file__, "the warning points at the line that dropped it"
    assert w.source is not None  # tracemalloc shows where the handle was made
    assert not o.timer.is_active()


def test_no_warning_when_cancelled_detached_left_with_or_fired() -> None:
    o = Obj()

    def uses() -> None:
        h = o.start(hrt.s(10))
        h.cancel()
        del h
        h = o.start(hrt.s(10))
        h.detach()
        del h
        o.timer._cancel()
        with o.start(hrt.s(10)):
            pass
        h = o.start(hrt.ms(1))
        assert o.fired.wait(WAIT)
        while o.timer.is_active():
            time.sleep(0.001)
        del h
        hrt.call_later(hrt.s(10), print).cancel()  # detached: never warns
        h2 = o.start(hrt.s(10))
        h3 = o.start(hrt.s(10))  # supersedes h2: dropping h2 cancels nothing
        del h2
        h3.cancel()

    assert _resource_warnings(uses) == []


# ---------------------------------------------------------------- 14.7 handles


def test_handles_answer_when_and_cancelled() -> None:
    mc = ManualClock()
    o = Obj()
    mc.attach(o)
    h = o.start(100, slack=10)
    assert h.when() == 100 and not h.cancelled()
    assert h.cancel() and h.cancelled()
    assert "cancelled" in repr(h)
    h2 = o.start(50)
    assert h2.try_to_cancel() == 1 and h2.cancelled()
    h3 = o.start(50)
    assert h3.try_to_cancel() == 1
    assert h3.try_to_cancel() == 0 and h3.cancelled()
    with o.start(30) as h4:
        assert not h4.cancelled()
    assert h4.cancelled()
    c = mc.call_later(200, lambda: None)
    assert c.when() == 200 and not c.cancelled()
    c.cancel()
    assert c.cancelled() and c.target is c


def test_asyncio_like_when_on_the_real_clock() -> None:
    before = hrt.now()
    c = hrt.call_later(hrt.s(1), lambda: None)
    after = hrt.now()
    assert before + hrt.s(1) <= c.when() <= after + hrt.s(1)
    c.cancel()


# ---------------------------------------------------------------- 14.7 contextvars

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


@pytest.mark.parametrize("hard", [False, True], ids=["SOFT", "HARD"])
def test_calls_carry_the_callers_context(hard: bool) -> None:
    seen: list[str] = []
    done = threading.Event()

    def note() -> None:
        seen.append(request_id.get())
        done.set()

    token = request_id.set("req-42")
    try:
        hrt.call_later(hrt.ms(1), note, hard=hard)
    finally:
        request_id.reset(token)
    assert done.wait(WAIT)
    assert seen == ["req-42"], "the callback did not run in the caller's context"


def test_an_explicit_context_and_a_bad_one() -> None:
    mc = ManualClock()
    ctx = contextvars.copy_context()
    ctx.run(request_id.set, "given")
    seen: list[str] = []
    mc.call_later(10, lambda: seen.append(request_id.get()))
    hrt.calls.later(mc._dom, 10, lambda: seen.append(request_id.get()), (), 0, False, ctx)
    p = hrt.calls.every(mc._dom, 10, lambda: seen.append(request_id.get()), (), 0, False, ctx)
    mc.advance(10)
    assert sorted(seen) == ["-", "given", "given"]
    p.cancel()
    with pytest.raises(TypeError, match=r"contextvars\.Context"):
        hrt.call_later(hrt.ms(1), print, context={"not": "a context"})  # type: ignore[arg-type]


# ---------------------------------------------------------------- 14.7 call_every


def test_call_every_first_on_a_manual_clock() -> None:
    mc = ManualClock()
    at: list[int] = []
    p = hrt.calls.every(mc._dom, 100, lambda: at.append(mc.now()), (), 0, False, None, 30)
    assert p.when() == 30 and p.lateness == 0
    mc.advance(30)
    assert at == [30] and p.lateness == 0 and p.when() == 130
    p.cancel()


def test_call_every_reports_how_late_a_call_began() -> None:
    """The SOFT thread is kept busy 40 ms past the first call's time: that
    call begins at least ~30 ms late, and ``lateness`` says so."""
    began = threading.Event()
    hrt.call_later(hrt.ms(1), time.sleep, 0.04)
    p = hrt.call_every(hrt.s(60), began.set, first=hrt.ms(5))
    assert began.wait(WAIT)
    assert p.runs == 1 and hrt.ms(30) <= p.lateness < hrt.s(5), p.lateness
    p.cancel()


def test_call_every_on_the_real_clock_with_first_and_clock() -> None:
    got = threading.Event()
    t0 = hrt.now(hrt.ClockId.REALTIME)
    p = hrt.call_every(hrt.s(60), got.set, first=hrt.ms(2), clock=hrt.ClockId.REALTIME)
    assert p.timer.clock == hrt.ClockId.REALTIME and not (p.timer.mode & hrt.TimerMode.REL)
    assert t0 + hrt.ms(2) <= p.when() <= hrt.now(hrt.ClockId.REALTIME) + hrt.ms(2)
    assert got.wait(WAIT), "first= was not honoured"
    assert p.runs == 1 and 0 <= p.lateness < hrt.s(5)
    p.cancel()
    b = hrt.call_every(hrt.s(60), got.set, clock=hrt.ClockId.BOOTTIME)
    assert b.timer.clock == hrt.ClockId.BOOTTIME
    b.cancel()
    with pytest.raises(ValueError):
        hrt.call_every(hrt.ms(1), print, first=-1)


# ---------------------------------------------------------------- 14.7 thread names


def test_callback_threads_have_names_in_threading_and_logging(
        caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("hrt-test-names")
    done = [threading.Event(), threading.Event()]
    names: dict[str, str] = {}

    def note(kind: str, ev: threading.Event) -> None:
        names[kind] = threading.current_thread().name
        log.warning("from %s", kind)
        ev.set()

    with caplog.at_level(logging.WARNING, logger="hrt-test-names"):
        hrt.call_later(hrt.ms(1), note, "soft", done[0])
        hrt.call_later(hrt.ms(1), note, "hard", done[1], hard=True)
        assert done[0].wait(WAIT) and done[1].wait(WAIT)
    assert names == {"soft": "hrt-soft", "hard": "hrt-hard-py"}
    assert {r.threadName for r in caplog.records} == {"hrt-soft", "hrt-hard-py"}


# ---------------------------------------------------------------- 14.7 aio.periodic


def test_aio_periodic_ticks_say_when_and_how_late() -> None:
    import asyncio

    ticks: list[Any] = []

    async def main() -> None:
        first = hrt.now() + hrt.ms(2)
        async for tick in hrt.aio.periodic(hrt.ms(1), first=first):
            ticks.append(tick)
            if len(ticks) == 3:
                break

    asyncio.run(main())
    assert [t.index for t in ticks] == [1, 2, 3]
    for t in ticks:
        assert isinstance(t, int) and t == t.overruns >= 0  # still the overrun count
        assert 0 <= t.lateness < hrt.s(5)
    d = [t.deadline for t in ticks]
    assert all((b - a) % hrt.ms(1) == 0 and b > a for a, b in itertools.pairwise(d))


# ---------------------------------------------------------------- 14.2 the asyncio trap


def test_a_future_method_given_to_call_later_warns_where_it_was_called() -> None:
    import asyncio

    seen: list[warnings.WarningMessage] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            hrt.call_later(hrt.s(10), fut.set_result, 42).cancel()
            hrt.call_at(hrt.now() + hrt.s(10), loop.stop).cancel()
            hrt.call_every(hrt.s(10), fut.cancel).cancel()
            # the right ways, and ordinary callables: silent
            hrt.call_later(hrt.s(10), loop.call_soon_threadsafe, fut.set_result, 1).cancel()
            hrt.aio.call_later(hrt.s(10), fut.set_result, 1).cancel()
            hrt.call_later(hrt.s(10), print).cancel()
            hrt.call_later(hrt.s(10), [].append, 1).cancel()
        seen.extend(w)
        fut.cancel()

    asyncio.run(main())
    assert [w.category for w in seen] == [RuntimeWarning] * 3, [str(w.message) for w in seen]
    assert all(w.filename == __file__ for w in seen), "points at the caller's line"
    assert "hrtimer_cffi.aio.call_later" in str(seen[0].message)
