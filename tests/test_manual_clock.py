"""ManualClock without false greens (issue 14, item 3): ``advance()`` stops at
each deadline in turn and raises what callbacks raised; ``advance_jump()``
keeps the one-pass jump; the ``hrt_clock`` pytest fixture; ``stats()`` and
``expiry_stats()`` default alike."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import hrtimer_cffi as hrt
from hrtimer_cffi.testing import ManualClock

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup, ExceptionGroup
else:  # pragma: no cover (3.10)
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

MS = hrt.ms(1)


# ---------------------------------------------------------------- stepping


def test_advance_stops_at_each_deadline_of_a_periodic_call() -> None:
    mc = ManualClock()
    seen: list[int] = []
    h = mc.call_every(MS, lambda: seen.append(mc.now()))
    assert mc.advance(10 * MS) == 10
    assert seen == [k * MS for k in range(1, 11)]
    p = h.target
    assert (p.runs, p.overruns) == (10, 0)
    assert mc.now() == 10 * MS
    h.cancel()


def test_advance_runs_each_call_at_its_own_time_in_order() -> None:
    mc = ManualClock()
    seen: list[tuple[str, int]] = []

    def note(name: str) -> None:
        seen.append((name, mc.now()))

    mc.call_later(3 * MS, note, "a")
    mc.call_later(1 * MS, note, "b")
    mc.call_later(2 * MS, note, "c", hard=True)  # another context
    mc.shift_realtime(hrt.s(100))
    mc.call_at(hrt.s(100) + 2 * MS + 500, note, "rt", clock=hrt.ClockId.REALTIME)
    mc.call_later(20 * MS, note, "outside")
    assert mc.advance(10 * MS) == 4
    assert seen == [("b", MS), ("c", 2 * MS), ("rt", 2 * MS + 500), ("a", 3 * MS)]
    assert mc.now() == 10 * MS


def test_calls_armed_by_callbacks_run_at_their_time_within_the_same_advance() -> None:
    mc = ManualClock()
    seen: list[tuple[str, int]] = []

    def first() -> None:
        seen.append(("first", mc.now()))
        mc.call_later(2 * MS, lambda: seen.append(("second", mc.now())))
        mc.call_later(0, lambda: seen.append(("now", mc.now())))

    mc.call_later(MS, first)
    assert mc.advance(5 * MS) == 3
    assert seen == [("first", MS), ("now", MS), ("second", 3 * MS)]


def test_a_timer_still_due_after_its_callback_runs_at_the_next_stop() -> None:
    """RESTART without forward: once per stop, never a loop at one instant."""
    mc = ManualClock()
    seen: list[int] = []

    class Again(hrt.HasTimer):
        timer = hrt.TimerField()

        def run(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart:
            seen.append(ctx.now)
            return hrt.TimerRestart.RESTART

    a = Again()
    mc.attach(a)
    h = a.start(MS)
    mc.call_later(2 * MS, lambda: None)
    assert mc.advance(3 * MS) == 4  # Again at 1, 2 (with the call), 3 ms
    assert seen == [MS, 2 * MS, 3 * MS]
    assert mc.advance(0) == 1 and seen[-1] == 3 * MS
    h.cancel()


def test_advance_zero_and_slack() -> None:
    mc = ManualClock()
    seen: list[tuple[str, int]] = []
    mc.call_later(0, lambda: seen.append(("zero", mc.now())))
    assert mc.advance(0) == 1 and seen == [("zero", 0)]
    # slack: due from the soft expiry, run at the first stop at or after it
    mc.call_later(MS, lambda: seen.append(("slack", mc.now())), slack=MS)
    mc.call_later(MS + 300, lambda: seen.append(("exact", mc.now())))
    assert mc.advance(5 * MS) == 2
    assert seen[1:] == [("exact", MS + 300), ("slack", MS + 300)]  # in hard-expiry order


def test_advance_jump_keeps_the_one_pass() -> None:
    mc = ManualClock()
    seen: list[int] = []
    h = mc.call_every(MS, lambda: seen.append(mc.now()))
    assert mc.advance_jump(10 * MS) == 1
    assert seen == [10 * MS]
    assert (h.target.runs, h.target.overruns) == (1, 9)
    h.cancel()
    with pytest.raises(ValueError):
        mc.advance_jump(-1)


def test_advance_saturates_at_int64_max() -> None:
    mc = ManualClock(start=2**63 - 10)
    seen: list[int] = []
    mc.call_at(2**63 - 1, lambda: seen.append(mc.now()))
    assert mc.advance(hrt.s(1)) == 1
    assert seen == [2**63 - 1] and mc.now() == 2**63 - 1


# ---------------------------------------------------------------- errors


def test_an_assert_failing_in_a_callback_fails_the_advance(unraisable: list[Any]) -> None:
    mc = ManualClock()
    seen: list[str] = []

    def check() -> None:
        assert mc.now() == 0, "a timeout fired"

    mc.call_later(MS, check)
    mc.call_later(2 * MS, seen.append, "after")
    with pytest.raises(AssertionError, match="a timeout fired") as info:
        mc.advance(5 * MS)
    assert seen == ["after"], "the advance goes on to its end"
    assert mc.now() == 5 * MS
    assert unraisable == []
    notes = getattr(info.value, "__notes__", [])
    assert any("timer callback of" in n and "Call" in n for n in notes), notes


def test_several_errors_raise_an_exception_group_in_order(unraisable: list[Any]) -> None:
    mc = ManualClock()

    def bad_return() -> None:
        pass

    class BadReturn(hrt.HasTimer):
        timer = hrt.TimerField()

        def run(self, ctx: hrt.CallbackContext) -> Any:
            return "not a TimerRestart"

    mc.call_later(2 * MS, lambda: {}["missing"])
    mc.call_later(MS, lambda: 1 / 0)
    b = BadReturn()
    mc.attach(b)
    b.start(3 * MS).detach()
    with pytest.raises(ExceptionGroup) as info:
        mc.advance(5 * MS)
    kinds = [type(e) for e in info.value.exceptions]
    assert kinds == [ZeroDivisionError, KeyError, TypeError]
    assert unraisable == []


def test_errors_in_advance_jump_raise_too(unraisable: list[Any]) -> None:
    mc = ManualClock()
    mc.call_later(MS, lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        mc.advance_jump(MS)
    assert unraisable == []


def test_advancing_its_own_clock_from_a_callback_fails_the_advance() -> None:
    mc = ManualClock()
    mc.call_later(MS, mc.advance, MS)
    with pytest.raises(hrt.TimerStateError):
        mc.advance(2 * MS)


def test_a_nested_advance_collects_its_own_errors(unraisable: list[Any]) -> None:
    outer, inner = ManualClock(), ManualClock()
    inner.call_later(MS, lambda: 1 / 0)
    caught: list[BaseException] = []

    def advance_inner() -> None:
        try:
            inner.advance(MS)
        except ZeroDivisionError as e:
            caught.append(e)
        raise KeyError("outer")

    outer.call_later(MS, advance_inner)
    with pytest.raises(KeyError):
        outer.advance(MS)
    assert [type(e) for e in caught] == [ZeroDivisionError]
    assert unraisable == []


def test_errors_of_real_timers_still_go_to_the_hook_during_an_advance(
    unraisable: list[Any],
) -> None:
    """Only this thread's ManualClock callbacks are collected."""
    mc = ManualClock()
    done = threading.Event()

    def real() -> None:
        try:
            raise ValueError("real")
        finally:
            done.set()

    def slow() -> None:
        hrt.call_later(0, real)
        assert done.wait(2.0)

    mc.call_later(MS, slow)
    mc.advance(MS)
    for _ in range(200):
        if unraisable:
            break
        hrt.sleep(hrt.ms(5))
    assert [type(a.exc_value) for a in unraisable] == [ValueError]


def test_keyboard_interrupt_errors_before_it_go_to_the_hook(unraisable: list[Any]) -> None:
    mc = ManualClock()

    def interrupt() -> None:
        raise KeyboardInterrupt

    mc.call_later(MS, lambda: 1 / 0)
    mc.call_later(2 * MS, interrupt)
    mc.call_later(3 * MS, print)
    with pytest.raises(KeyboardInterrupt):
        mc.advance(5 * MS)
    assert mc.now() == 2 * MS  # stopped at the interrupting expiry
    assert [type(a.exc_value) for a in unraisable] == [ZeroDivisionError]


def test_exception_group_type_on_this_python() -> None:
    assert issubclass(ExceptionGroup, BaseExceptionGroup)


# ---------------------------------------------------------------- close


def test_close_cancels_and_later_use_raises() -> None:
    mc = ManualClock()
    seen: list[int] = []

    class Target:
        pass

    mc.call_later(MS, seen.append, 1)
    t = mc.timer()
    mc.close()
    mc.close()  # idempotent
    for op in (mc.now, lambda: mc.advance(MS), lambda: mc.advance_jump(MS),
               lambda: mc.shift_realtime(1), mc.stats):
        with pytest.raises(hrt.TimerStateError):
            op()
    with pytest.raises(hrt.TimerStateError):
        mc.call_later(MS, print)
    del t
    assert seen == []


def test_close_from_its_own_callback_fails_the_advance() -> None:
    mc = ManualClock()
    mc.call_later(MS, mc.close)
    with pytest.raises(hrt.TimerStateError, match="advancing"):
        mc.advance(MS)
    assert mc.now() == MS  # still open
    mc.close()


# ---------------------------------------------------------------- stats defaults


def test_stats_and_expiry_stats_default_to_the_same_context() -> None:
    d_mc = inspect.signature(ManualClock.stats).parameters["hard"].default
    d_real = inspect.signature(hrt.expiry_stats).parameters["hard"].default
    assert d_mc is d_real is False  # SOFT, as call_later's hard=False
    mc = ManualClock()
    mc.call_later(MS, print)
    mc.call_later(MS, lambda: None, hard=True)
    mc.call_later(MS, lambda: None, hard=True)
    mc.advance(MS)
    assert mc.stats()["timers_run"] == mc.stats(hard=False)["timers_run"] == 1
    assert mc.stats(hard=True)["timers_run"] == 2
    assert hrt.expiry_stats().keys() == mc.stats().keys()
    for bad in (1, None, "yes"):
        with pytest.raises(TypeError):
            mc.stats(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            hrt.expiry_stats(bad)  # type: ignore[arg-type]


def test_expiry_stats_default_counts_soft_callbacks() -> None:
    before = hrt.expiry_stats()["timers_run"]
    done = threading.Semaphore(0)
    for _ in range(20):
        hrt.call_later(0, done.release)
    for _ in range(20):
        assert done.acquire(timeout=2.0)
    assert hrt.expiry_stats()["timers_run"] >= before + 20


# ---------------------------------------------------------------- pytest plugin


def test_hrt_clock_fixture(hrt_clock: ManualClock) -> None:
    assert isinstance(hrt_clock, ManualClock) and hrt_clock.now() == 0
    seen: list[int] = []
    hrt_clock.call_every(MS, lambda: seen.append(hrt_clock.now()))
    hrt_clock.advance(3 * MS)
    assert seen == [MS, 2 * MS, 3 * MS]


def test_the_plugin_is_an_entry_point_and_not_imported_with_the_package(
    tmp_path: Path,
) -> None:
    eps = metadata.entry_points(group="pytest11")
    assert any(ep.value == "hrtimer_cffi.pytest_plugin" for ep in eps), list(eps)
    code = "import sys, hrtimer_cffi; assert 'pytest' not in sys.modules, 'pytest imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    # A project without a conftest gets the fixture, and it is closed after.
    (tmp_path / "test_uses_fixture.py").write_text(textwrap.dedent("""
        import pytest
        import hrtimer_cffi as hrt
        kept = []

        def test_a(hrt_clock):
            hrt_clock.call_later(hrt.ms(1), print)
            kept.append(hrt_clock)
            hrt_clock.advance(hrt.ms(1))

        def test_b():
            with pytest.raises(hrt.TimerStateError, match="closed"):
                kept[0].now()

        def test_c(hrt_clock):
            hrt_clock.call_later(hrt.ms(1), lambda: 1 / 0)
            hrt_clock.advance(hrt.ms(1))   # fails the test
    """))
    r = subprocess.run(
        # (Other plugins off, for speed; ours still loads through its entry point.)
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "no:hypothesispytest", "-p", "no:benchmark", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert "2 passed, 1 failed" in r.stdout or "1 failed, 2 passed" in r.stdout, r.stdout
    assert "ZeroDivisionError" in r.stdout
