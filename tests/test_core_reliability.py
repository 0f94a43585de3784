"""The core's reliability findings seen from Python: a hang at exit in a
REALTIME sleep (issue 9.2), timers still due after their callback (9.3),
nested ManualClock advances (9.4), fork while another thread is inside a
ManualClock callback (9.6), Ctrl-C inside ManualClock.advance (9.9), the
manual clock's atomic add (9.10), a Timer freed by its own callback (16.1).

Scenarios that hung or crashed before their fix run in a fresh interpreter
with a timeout (the helpers of test_process.py), so a regression fails the
test instead of the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest
from test_process import check_clean, run

import hrtimer_cffi as hrt
from hrtimer_cffi.testing import ManualClock

HANG = 30  # seconds a scenario may take before it counts as a hang


def run_no_hang(script: str, timeout: float = HANG) -> subprocess.CompletedProcess[str]:
    try:
        return run(script, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"hung for {timeout} s\nstdout:\n{e.stdout!r}\nstderr:\n{e.stderr!r}")


# ---------------------------------------------------------------- 9.2


def test_exit_during_a_hard_callbacks_realtime_sleep_until() -> None:
    """Exit waits for the HARD Python callback's absolute REALTIME sleep to
    end (it used to wait for ever: the C timer ending it was stopped first)."""
    proc = run_no_hang(
        """
        sleeping = threading.Event()
        out = []

        def cb():
            sleeping.set()
            rt = hrt.now(hrt.ClockId.REALTIME)
            out.append(hrt.sleep_until(rt + hrt.ms(500), clock=hrt.ClockId.REALTIME))

        hrt.call_later(0, cb, hard=True)
        assert sleeping.wait(5)
        time.sleep(0.05)
        print("exiting")
        """
    )
    check_clean(proc)
    assert "exiting" in proc.stdout


# ---------------------------------------------------------------- 9.3


def test_restart_without_forward_does_not_starve_cancel_or_others() -> None:
    """Real clock: a HARD timer that returns RESTART without forward runs once
    per expiry run; cancel() returns and a later SOFT call still runs."""
    proc = run_no_hang(
        """
        class Raw(hrt.HasTimer):
            timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.HARD)
            runs = 0
            def run(self, ctx):
                self.runs += 1
                return hrt.TimerRestart.RESTART

        class Past(hrt.HasTimer):
            timer = hrt.TimerField(mode=hrt.TimerMode.ABS | hrt.TimerMode.HARD)
            runs = 0
            def run(self, ctx):
                self.runs += 1
                self.start(ctx.now).detach()   # re-armed at ctx.now: still due
                return None

        for o in (Raw(), Past()):
            h = o.start(0 if isinstance(o, Raw) else hrt.now())
            t0 = time.monotonic()
            while o.runs < 3 and time.monotonic() - t0 < 5:
                time.sleep(0.001)
            assert o.runs >= 3, o.runs
            soft = threading.Event()
            hrt.call_later(hrt.ms(1), soft.set)
            assert soft.wait(5), "a SOFT call starved"
            h.cancel()
            assert not o.timer.is_active()
        print("ok")
        """
    )
    check_clean(proc)
    assert "ok" in proc.stdout


def test_manual_clock_still_due_timers_run_once_per_advance() -> None:
    proc = run_no_hang(
        """
        from hrtimer_cffi.testing import ManualClock

        mc = ManualClock()

        class Raw(hrt.HasTimer):
            timer = hrt.TimerField()
            runs = 0
            def run(self, ctx):
                self.runs += 1
                return hrt.TimerRestart.RESTART

        class Past(hrt.HasTimer):
            timer = hrt.TimerField(mode=hrt.TimerMode.ABS)
            runs = 0
            def run(self, ctx):
                self.runs += 1
                self.start(ctx.now).detach()
                return None

        class Tick(hrt.HasTimer):      # API.md section 4, started with slack
            timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.HARD)
            fired = 0
            overruns = 0
            def run(self, ctx):
                self.fired += 1
                self.overruns += ctx.forward_now(hrt.ms(1)) - 1
                return hrt.TimerRestart.RESTART

        raw, past, tick = Raw(), Past(), Tick()
        for o in (raw, past, tick):
            mc.attach(o)
        h1 = raw.start(10)
        h2 = past.start(10)
        h3 = tick.start(hrt.ms(1), slack=hrt.us(500))
        assert mc.advance_jump(hrt.ms(1) + hrt.us(200)) == 3  # inside Tick's slack window
        assert (raw.runs, past.runs, tick.fired, tick.overruns) == (1, 1, 1, 0)
        assert mc.advance(0) == 2                             # raw and past again, not tick
        assert tick.timer.soft_expires == hrt.ms(2)
        for _ in range(10):
            mc.advance(hrt.ms(1))
        assert tick.fired == 11 and tick.overruns == 0, (tick.fired, tick.overruns)
        for h in (h1, h2, h3):
            h.cancel()

        # saturated clocks with a call_every pending
        for mc2, step in ((ManualClock(), 2**63 - 1), (ManualClock(start=2**63 - 1), 0)):
            p = mc2.call_every(hrt.ms(1), lambda: None)
            assert mc2.advance_jump(step) in (0, 1)   # (advance() would stop every 1 ms)
            assert mc2.advance(0) == 1
            assert mc2.now() == 2**63 - 1
            assert p.target.overruns >= 0
            p.cancel()
        print("ok")
        """
    )
    check_clean(proc)
    assert "ok" in proc.stdout


# ---------------------------------------------------------------- 9.4


def test_nested_advance_cancelling_the_outer_timer() -> None:
    proc = run_no_hang(
        """
        from hrtimer_cffi.testing import ManualClock

        m1, m2 = ManualClock(), ManualClock()
        seen = []

        class Outer(hrt.HasTimer):
            timer = hrt.TimerField()
            def run(self, ctx):
                seen.append(("inner ran", m2.advance(10)))
                return hrt.TimerRestart.RESTART     # cancelled meanwhile: ignored

        class Inner(hrt.HasTimer):
            timer = hrt.TimerField()
            def run(self, ctx):
                seen.append(("cancel", outer_h.cancel()))
                try:
                    m1.advance(1)
                except hrt.TimerStateError:
                    seen.append("outer advance refused")
                return None

        outer, inner = Outer(), Inner()
        m1.attach(outer)
        m2.attach(inner)
        outer_h = outer.start(10)
        inner.start(10).detach()
        assert m1.advance(10) == 1
        assert seen == [("cancel", False), "outer advance refused", ("inner ran", 1)], seen
        assert not outer.timer.is_active()
        print("ok")
        """
    )
    check_clean(proc)
    assert "ok" in proc.stdout


# ---------------------------------------------------------------- 9.6


def test_fork_while_another_thread_is_in_a_manual_callback() -> None:
    proc = run_no_hang(
        """
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)   # fork with threads
        from hrtimer_cffi.testing import ManualClock

        mc = ManualClock()
        inside, release = threading.Event(), threading.Event()
        ran_b = []

        class Block(hrt.HasTimer):
            timer = hrt.TimerField()
            def run(self, ctx):
                inside.set()
                release.wait(20)

        class B(hrt.HasTimer):
            timer = hrt.TimerField()
            def run(self, ctx):
                ran_b.append(ctx.now)

        a, b = Block(), B()
        mc.attach(a)
        mc.attach(b)
        ha = a.start(10)
        b.start(20).detach()
        th = threading.Thread(target=mc.advance, args=(10,))
        th.start()
        assert inside.wait(5)
        pid = os.fork()
        if pid == 0:
            code = 0
            if a.timer.is_callback_running():
                code |= 1
            ha.cancel()                       # must not wait for a thread that is gone
            if mc.advance(10) != 1 or len(ran_b) != 1:
                code |= 2
            os._exit(code)
        status = wait_child(pid)
        release.set()
        th.join(5)
        assert status == 0, status
        assert mc.advance(10) == 1
        print("ok")
        """
    )
    check_clean(proc)
    assert "ok" in proc.stdout


# ---------------------------------------------------------------- 9.9


class _Raiser(hrt.HasTimer):
    timer = hrt.TimerField()

    def __init__(self, log: list[str], name: str, exc: BaseException | None = None) -> None:
        self.log = log
        self.name = name
        self.exc = exc

    def run(self, ctx: hrt.CallbackContext) -> None:
        self.log.append(self.name)
        if self.exc is not None:
            raise self.exc


def test_keyboard_interrupt_propagates_out_of_advance(unraisable: list[object]) -> None:
    for jump in (True, False):
        mc = ManualClock()
        log: list[str] = []
        objs = [_Raiser(log, "a"), _Raiser(log, "b", KeyboardInterrupt()), _Raiser(log, "c")]
        for i, o in enumerate(objs):
            mc.attach(o)
            o.start(10 + i).detach()
        with pytest.raises(KeyboardInterrupt):
            (mc.advance_jump if jump else mc.advance)(100)
        assert log == ["a", "b"], "the callbacks after the interrupt must not run"
        assert objs[2].timer.is_queued()
        assert unraisable == []
        # jump: the clock is at 100 and c is due; step: it stopped at b's 11
        assert mc.now() == (100 if jump else 11)
        assert mc.advance(0 if jump else 1) == 1 and log == ["a", "b", "c"]
        # an ordinary exception comes out of advance() after the others ran
        objs[0].exc = RuntimeError("boom")
        objs[0].start(1).detach()
        objs[1].exc = None
        objs[1].start(2).detach()
        with pytest.raises(RuntimeError, match="boom"):
            mc.advance(2)
        assert log[-2:] == ["a", "b"]
        assert unraisable == []


def test_real_ctrl_c_inside_advance_and_nested_advances() -> None:
    mc, inner_mc = ManualClock(), ManualClock()
    log: list[str] = []

    class Sigint(hrt.HasTimer):
        timer = hrt.TimerField()

        def run(self, ctx: hrt.CallbackContext) -> None:
            log.append("sigint")
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs at a bytecode boundary
                pass
            log.append("not interrupted")

    class Outer(hrt.HasTimer):
        timer = hrt.TimerField()

        def run(self, ctx: hrt.CallbackContext) -> None:
            log.append("outer")
            inner_mc.advance(10)

    s, outer, after = Sigint(), Outer(), _Raiser(log, "after")
    inner_mc.attach(s)
    mc.attach(outer)
    mc.attach(after)
    s.start(10).detach()
    outer.start(10).detach()
    after.start(20).detach()
    assert threading.current_thread() is threading.main_thread()
    with pytest.raises(KeyboardInterrupt):
        mc.advance(100)
    assert log == ["outer", "sigint"]
    assert after.timer.is_queued()
    after.timer._cancel()


# ---------------------------------------------------------------- 16.1


def test_timer_replaced_from_its_own_callback_is_freed_after_it() -> None:
    """A callback that drops the object's reference to its own running Timer.
    Before, that freed the C timer inside its callback: the memory of a timer
    allocated right after the old Timer's finalizer (in a weakref callback)
    was the freed one, and the expiry run re-queued it (a Timer never started
    fired with no target: a crash). Now a timer freed from its own callback
    (here: its Timer dies when the callback returns) is freed when the
    callback returns and its RESTART is void (tests/c/test_core.c
    free_from_own_callback): the dropped Timer dies, the fresh one stays
    unarmed. The public way in, ``TimerField.install(obj, new,
    replace=True)`` from the callback, is refused while the timer is active
    (issue 16.2); the test swaps the stored Timer underneath, as that call
    once did."""
    proc = run_no_hang(
        """
        import gc, weakref
        from hrtimer_cffi.testing import ManualClock

        mc = ManualClock()

        class Swap(hrt.HasTimer):
            timer = hrt.TimerField()
            runs = 0
            fresh = None
            def run(self, ctx):
                self.runs += 1
                if self.runs > 1:
                    return hrt.TimerRestart.NO_RESTART
                ctx.forward_now(10)
                self.wr = weakref.ref(ctx.timer, self.on_dead)
                object.__setattr__(self, "_hrt_t", mc.timer())   # drops the running Timer
                return hrt.TimerRestart.RESTART
            def on_dead(self, _):
                self.fresh = mc.timer()

        objs = [Swap() for _ in range(50)]
        for o in objs:
            mc.attach(o)
            o.start(10).detach()
        for _ in range(5):
            mc.advance(10)
        gc.collect()
        assert [o.runs for o in objs] == [1] * 50, [o.runs for o in objs]
        assert all(o.wr() is None for o in objs)   # freed once its callback ended
        assert not any(o.fresh.is_active() for o in objs)
        print("ok")
        """
    )
    check_clean(proc)
    assert "ok" in proc.stdout
