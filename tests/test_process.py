"""Process life: fork, and interpreter exit with timers armed or running.

Every scenario is a script run in a fresh interpreter with a timeout, so a
crash, a hang or a lost exit code is a failed test. Scripts that fork wait
for their child with a deadline and kill it if it does not finish.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import CHILD_PRELUDE

TIMEOUT = 60

PRELUDE = CHILD_PRELUDE + textwrap.dedent(
    """
    def fires(hard, timeout=5.0):
        ev = threading.Event()
        hrt.call_later(hrt.ms(1), ev.set, hard=hard)
        return ev.wait(timeout)
    """
)


def run(script: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", PRELUDE + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def check_clean(proc: subprocess.CompletedProcess[str], code: int = 0) -> None:
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == code, detail
    for bad in ("Fatal Python error", "Segmentation fault", "Traceback", "LATE"):
        assert bad not in proc.stderr and bad not in proc.stdout, detail


# ---------------------------------------------------------------- fork


def test_fork_child_starts_with_no_armed_timers_and_parent_is_unaffected() -> None:
    proc = run(
        """
        runs = []

        class T(hrt.HasTimer):
            timer = hrt.TimerField(hrt.TimerMode.REL | hrt.TimerMode.HARD)
            def __init__(self, name):
                self.name = name
            def run(self, ctx):
                runs.append(self.name)

        class S(T):
            timer = hrt.TimerField(hrt.TimerMode.REL)

        soon = [T("hard-soon"), S("soft-soon")]
        far = [T("hard-far"), S("soft-far")]
        handles = [o.start(hrt.ms(150)) for o in soon] + [o.start(hrt.s(60)) for o in far]
        per = hrt.call_every(hrt.ms(5), lambda: runs.append("periodic"))
        assert fires(True) and fires(False)

        pid = os.fork()
        if pid == 0:
            # child: nothing armed, nothing fires, and the package works
            ok = all(not o.timer.is_active() for o in soon + far)
            ok = ok and not per.timer.is_active()
            runs.clear()
            time.sleep(0.3)                      # past the parent's "soon" timers
            ok = ok and runs == []
            ok = ok and fires(True) and fires(False)
            h = soon[0].start(hrt.ms(1))         # an old timer re-armed in the child
            time.sleep(0.1)
            ok = ok and runs == ["hard-soon"] and not soon[0].timer.is_active()
            assert h.cancel() is False
            assert handles[2].cancel() is False  # parent's armed timer: not armed here
            os._exit(0 if ok else 1)

        code = wait_child(pid)
        assert code == 0, f"child exit {code}"
        time.sleep(0.3)
        assert "hard-soon" in runs and "soft-soon" in runs, runs
        assert runs.count("periodic") > 10, runs
        assert all(o.timer.is_queued() for o in far)
        assert fires(True) and fires(False)
        assert per.cancel() is True
        for h in handles:
            h.cancel()
        print("ok")
        """
    )
    check_clean(proc)
    assert proc.stdout.strip().endswith("ok")


def test_fork_while_callbacks_run() -> None:
    proc = run(
        """
        entered = {"hard": threading.Event(), "soft": threading.Event()}
        finished = []

        class Slow(hrt.HasTimer):
            timer = hrt.TimerField(hrt.TimerMode.REL | hrt.TimerMode.HARD)
            kind = "hard"
            def run(self, ctx):
                entered[self.kind].set()
                time.sleep(0.3)          # releases the GIL: main forks meanwhile
                finished.append(self.kind)

        class SlowSoft(Slow):
            timer = hrt.TimerField(hrt.TimerMode.REL)
            kind = "soft"

        a, b = Slow(), SlowSoft()
        ha, hb = a.start(0), b.start(0)
        assert entered["hard"].wait(5) and entered["soft"].wait(5)
        assert a.timer.is_callback_running() and b.timer.is_callback_running()
        pid = os.fork()
        if pid == 0:
            # the callbacks' threads do not exist here: nothing is running,
            # cancel() does not wait for them, new timers fire
            ok = not a.timer.is_callback_running() and not a.timer.is_active()
            ok = ok and not b.timer.is_active()
            t0 = time.monotonic()
            ok = ok and ha.cancel() is False and hb.cancel() is False
            ok = ok and time.monotonic() - t0 < 0.1
            ok = ok and fires(True) and fires(False)
            a2 = Slow()
            ok = ok and a2.start_scoped(hrt.ms(1), lambda: True)
            os._exit(0 if ok else 1)
        assert ha.cancel() is False and hb.cancel() is False   # waits for both
        assert sorted(finished) == ["hard", "soft"], finished
        code = wait_child(pid)
        assert code == 0, f"child exit {code}"
        assert fires(True) and fires(False)
        print("ok")
        """
    )
    check_clean(proc)
    assert proc.stdout.strip().endswith("ok")


def test_fork_from_a_callback_child_execs_or_exits() -> None:
    """A child forked inside a callback is a copy of the expiry thread: it
    must leave with os._exit (or exec) before returning to the core."""
    proc = run(
        """
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        result = {}
        done = threading.Event()

        class Forker(hrt.HasTimer):
            timer = hrt.TimerField(hrt.TimerMode.REL | hrt.TimerMode.HARD)
            def run(self, ctx):
                pid = os.fork()
                if pid == 0:
                    os._exit(0 if fires(True) and fires(False) else 1)
                result["pid"] = pid
                done.set()

        f = Forker()
        h = f.start(hrt.ms(1))
        assert done.wait(5)
        assert wait_child(result["pid"]) == 0
        assert fires(True) and fires(False)
        print("ok")
        """
    )
    check_clean(proc)


def test_fork_from_a_callback_child_returning_into_the_core_ends() -> None:
    """If the child forked inside a callback returns from it, its copy of the
    expiry thread (its only thread) must end, not spin on the parent's
    closed descriptors: the child process finishes on its own."""
    proc = run(
        """
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        result = {}
        done = threading.Event()

        class Forker(hrt.HasTimer):
            timer = hrt.TimerField(hrt.TimerMode.REL | hrt.TimerMode.HARD)
            def run(self, ctx):
                pid = os.fork()
                if pid:
                    result["pid"] = pid
                    done.set()
                return None        # the child returns into the core too

        f = Forker()
        h = f.start(hrt.ms(1))
        assert done.wait(5)
        code = wait_child(result["pid"], seconds=10)
        assert code != "hung", "the forked child kept running after its callback returned"
        assert fires(True) and fires(False)
        print("ok")
        """
    )
    check_clean(proc)


# ---------------------------------------------------------------- exit


LATE_GUARD = """
import atexit, os as _os
_after_core_shutdown = []
# registered before hrtimer_cffi is imported, so it runs after the package's
# own atexit step (LIFO): from here on no callback may run
atexit.register(lambda: _after_core_shutdown.append(1))

def late_check():
    if _after_core_shutdown:
        _os.write(1, b"LATE callback after the core shut down\\n")
"""


def run_exit(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c",
         LATE_GUARD + PRELUDE + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_exit_with_10k_armed_timers_keeps_exit_code() -> None:
    proc = run_exit(
        """
        import random
        calls = []
        class T(hrt.HasTimer):
            timer = hrt.TimerField(hrt.TimerMode.REL)
            def run(self, ctx):
                late_check()
                calls.append(1)

        class H(T):
            timer = hrt.TimerField(hrt.TimerMode.REL | hrt.TimerMode.HARD)

        rng = random.Random(5)
        handles = []
        for i in range(10_000):
            o = (T if i % 2 else H)()
            # a quarter fire while the interpreter shuts down, the rest later
            delay = rng.randrange(0, hrt.ms(20)) if i % 4 == 0 else hrt.s(30 + i)
            h = o.start(delay)
            h.detach()
            handles.append(h)
        for i in range(2_000):
            hrt.call_later(rng.randrange(0, hrt.ms(20)), late_check, hard=bool(i % 2))
        p = hrt.call_every(hrt.us(100), late_check, hard=True)
        time.sleep(0.005)
        t0 = time.monotonic()
        print("exiting", flush=True)
        sys.exit(3)
        """
    )
    check_clean(proc, 3)


def test_exit_while_a_hard_callback_runs() -> None:
    proc = run_exit(
        """
        entered = threading.Event()
        class Slow(hrt.HasTimer):
            timer = hrt.TimerField(hrt.TimerMode.REL | hrt.TimerMode.HARD)
            def run(self, ctx):
                entered.set()
                time.sleep(0.5)
                late_check()
                ctx.forward_now(hrt.ms(1))
                return hrt.TimerRestart.RESTART   # refused: the core is stopping

        class SlowSoft(Slow):
            timer = hrt.TimerField(hrt.TimerMode.REL)

        a, b = Slow(), SlowSoft()
        a.start(0).detach()
        b.start(0).detach()
        assert entered.wait(5)
        others = [hrt.call_later(hrt.ms(i % 50), late_check, hard=bool(i % 2)) for i in range(500)]
        sys.exit(3)
        """
    )
    check_clean(proc, 3)


def test_exit_requested_from_a_callback() -> None:
    """A callback asks the main thread to exit (SIGINT) and keeps
    running while the interpreter shuts down; the exit code is kept."""
    proc = run_exit(
        """
        class Quit(hrt.HasTimer):
            timer = hrt.TimerField(hrt.TimerMode.REL | hrt.TimerMode.HARD)
            def run(self, ctx):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)          # still running while main exits
                late_check()

        for i in range(1000):
            hrt.call_later(hrt.ms(i % 30), late_check)
        q = Quit()
        try:
            q.start(hrt.ms(1)).detach()
            time.sleep(10)
        except KeyboardInterrupt:
            sys.exit(3)
        sys.exit(4)   # the interrupt never came
        """
    )
    check_clean(proc, 3)


def test_sys_exit_inside_a_callback_goes_to_unraisablehook() -> None:
    """SystemExit raised by a callback is an exception from a callback: it is
    reported to sys.unraisablehook and the process goes on (as in a thread);
    os._exit in a callback ends the process with its code at once."""
    proc = run_exit(
        """
        seen = []
        sys.unraisablehook = lambda a: seen.append(a.exc_type)
        class Exit(hrt.HasTimer):
            timer = hrt.TimerField(hrt.TimerMode.REL | hrt.TimerMode.HARD)
            def run(self, ctx):
                sys.exit(9)
        class HardExit(Exit):
            def run(self, ctx):
                os._exit(3)
        Exit().start(0).detach()
        time.sleep(0.2)
        assert seen == [SystemExit], seen
        assert fires(True) and fires(False)
        HardExit().start(0).detach()
        time.sleep(10)
        sys.exit(4)
        """
    )
    assert proc.returncode == 3, proc.stderr
    assert "Fatal Python error" not in proc.stderr


def test_main_thread_ends_with_callbacks_in_flight() -> None:
    proc = run_exit(
        """
        class Busy(hrt.HasTimer):
            timer = hrt.TimerField(hrt.TimerMode.REL | hrt.TimerMode.HARD)
            def run(self, ctx):
                late_check()
                time.sleep(0.001)
                ctx.forward_now(hrt.us(200))
                return hrt.TimerRestart.RESTART

        class BusySoft(Busy):
            timer = hrt.TimerField(hrt.TimerMode.REL)

        keep = []
        for i in range(50):
            o = (Busy if i % 2 else BusySoft)()
            o.start(hrt.us(10 * i)).detach()
            keep.append(o)
        time.sleep(0.05)
        # falling off the end: exit code 0
        """
    )
    check_clean(proc, 0)


def test_start_after_exit_began_raises_state_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(
            """
            import atexit, os, sys

            def after():   # runs after the package's own atexit step (LIFO)
                import hrtimer_cffi as hrt

                class T(hrt.HasTimer):
                    timer = hrt.TimerField()
                    def run(self, ctx):
                        pass
                try:
                    T().start(0)
                    os.write(1, b"armed\\n")
                except hrt.TimerStateError:
                    os.write(1, b"refused\\n")

            atexit.register(after)
            import hrtimer_cffi as hrt
            hrt.call_later(hrt.s(10), print)
            sys.exit(3)
            """
        )],
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    check_clean(proc, 3)
    assert proc.stdout.strip() == "refused", proc.stdout
