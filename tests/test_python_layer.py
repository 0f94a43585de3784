"""Defects of the Python layer (issues 16 and 9), one test or more each.

Timer lifetime, exception safety, the unraisable path, fork and sub-interpreter
safety, aio and ManualClock lifetimes, clear errors. Whatever could crash or
hang the interpreter runs in a child process with a timeout.
"""

from __future__ import annotations

import asyncio
import dis
import gc
import os
import subprocess
import sys
import textwrap
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import pytest
from conftest import CHILD_PRELUDE

import hrtimer_cffi as hrt
from hrtimer_cffi import aio
from hrtimer_cffi._core import ffi
from hrtimer_cffi.testing import ManualClock

PKG_DIR = str(Path(hrt.__file__).resolve().parent)
FAR = hrt.s(3600)
TIMEOUT = 60


def child(script: str, timeout: float = TIMEOUT, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(script)],
        capture_output=True, text=True, timeout=timeout, **kw,
    )


def detail(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"




class Obj(hrt.HasTimer):
    timer = hrt.TimerField()

    def __init__(self) -> None:
        self.ctx_timers: list[hrt.Timer] = []

    def run(self, ctx: hrt.CallbackContext) -> None:
        self.ctx_timers.append(ctx.timer)


# ---------------------------------------------------------------- 16.2 install(replace=True)


def test_install_replace_refuses_an_active_timer() -> None:
    """16.2: replacing an armed timer would leave it firing for the object."""
    obj = Obj()
    h = obj.start(FAR)
    old = obj.timer
    with pytest.raises(hrt.TimerStateError, match="active"):
        hrt.TimerField.install(obj, hrt.Timer(), replace=True)
    assert obj.timer is old and old.is_queued()
    h.cancel()
    new = hrt.Timer()
    assert hrt.TimerField.install(obj, new, replace=True) is new and obj.timer is new


def test_the_context_carries_the_timer_that_fired() -> None:
    """16.2: ``ctx.timer`` is the timer that fired, even if the object's
    timer attribute was swapped meanwhile (a racing replace)."""
    mc = ManualClock()
    obj = Obj()
    fired = mc.attach(obj)
    h = obj.start(10)
    swapped = mc.timer()
    object.__setattr__(obj, "_hrt_t", swapped)  # what a racing install could do
    assert mc.advance(10) == 1
    assert obj.ctx_timers == [fired]
    del h


# ---------------------------------------------------------------- 16.3 copy and pickle


def test_timers_handles_and_owners_cannot_be_copied_or_pickled() -> None:
    """16.3: a copy shared the C timer (double free at exit: abort)."""
    proc = child(
        """
        import copy, pickle
        import hrtimer_cffi as hrt
        from hrtimer_cffi.testing import ManualClock

        class T(hrt.HasTimer):
            timer = hrt.TimerField()
            def run(self, ctx):
                pass

        t = T()
        things = {
            "Timer": hrt.Timer(),
            "ArcTimerHandle": t.start(hrt.s(60)),
            "PinTimerHandle": T().start_pinned(hrt.s(60)),
            "CTimer": hrt.ExpiryCounter().timer,
            "ExpiryCounter": hrt.ExpiryCounter(),
            "EventfdTimer": hrt.EventfdTimer(),
            "LatencyRecorder": hrt.LatencyRecorder(4),
            "ManualClock": ManualClock(),
        }
        for name, x in things.items():
            for how in (copy.copy, copy.deepcopy, pickle.dumps):
                try:
                    how(x)
                except TypeError as e:
                    assert "cannot be copied or pickled" in str(e), (name, e)
                else:
                    print("COPIED", name, how.__name__)
        print("done")
        """
    )
    assert proc.returncode == 0 and "done" in proc.stdout, detail(proc)
    assert "COPIED" not in proc.stdout, detail(proc)


# ---------------------------------------------------------------- 16.4 unraisable


class Fails(hrt.HasTimer):
    timer = hrt.TimerField()

    def run(self, ctx: hrt.CallbackContext) -> None:
        raise RuntimeError("from a callback")


class _RaisesInDel:
    def __del__(self) -> None:
        raise KeyError("foreign")


class Report(NamedTuple):
    exc_type: type[BaseException]
    exc_value: BaseException
    had_traceback: bool
    object: Any


@pytest.fixture
def own_hook() -> Iterator[list[Report]]:
    """A hook of the test's own (restored after, and checked still installed)
    that keeps no traceback: frames it would keep could keep objects alive."""
    seen: list[Report] = []
    lock = threading.Lock()

    def hook(args: Any) -> None:
        exc = args.exc_value
        report = Report(args.exc_type, exc, args.exc_traceback is not None, args.object)
        exc.__traceback__ = None
        with lock:
            seen.append(report)

    old = sys.unraisablehook
    sys.unraisablehook = hook
    try:
        yield seen
    finally:
        assert sys.unraisablehook is hook, "the installed hook was replaced"
        sys.unraisablehook = old


def test_reporting_a_callback_error_never_replaces_the_hook(own_hook: list[Report]) -> None:
    """16.4: at every step of reporting a callback error (the first one of
    the process included), an unraisable error reported meanwhile reaches the
    installed hook, and the hook is never swapped."""
    hook = sys.unraisablehook
    binding = vars(hrt._binding)
    if "_UnraisableHookArgs" in binding:
        # A binding that learns something from its first report starts from
        # scratch, so that this test covers the process's first report too.
        binding["_UnraisableHookArgs"] = None
    obj = Fails()
    try:  # the error of a callback, as the dispatch catches it
        obj.run(None)  # type: ignore[arg-type]
    except RuntimeError as e:
        err = e
    steps = 0
    swapped = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal steps, swapped
        if not frame.f_code.co_filename.startswith(PKG_DIR):
            return None
        if event == "line":
            steps += 1
            if sys.unraisablehook is not hook:
                swapped += 1
            _RaisesInDel()  # reported at once
        return tracer

    sys.settrace(tracer)
    try:
        hrt._binding.report_unraisable(err, "timer callback of", obj)
    finally:
        sys.settrace(None)
    foreign = [a for a in own_hook if isinstance(a.exc_value, KeyError)]
    ours = [a for a in own_hook if isinstance(a.exc_value, RuntimeError)]
    assert steps > 0 and swapped == 0
    assert len(foreign) == steps, "a report made while ours was in flight was lost"
    (args,) = ours
    assert args.exc_type is RuntimeError and args.had_traceback
    assert args.object.target is obj and repr(args.object) == f"timer callback of {obj!r}"


def test_concurrent_callback_errors_from_every_thread_all_reach_the_hook(
    own_hook: list[Report],
) -> None:
    """16.4: HARD and SOFT callbacks failing at the same instants on their
    expiry threads, while the main thread reports errors of its own: nothing
    is lost and the hook stays installed."""
    n = 200

    class HardFails(Fails):
        timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.HARD)

    objs: list[hrt.HasTimer] = [HardFails() for _ in range(n)] + [Fails() for _ in range(n)]
    at = hrt.now() + hrt.ms(20)
    handles = [o.start(max(0, at - hrt.now())) for o in objs]
    mine = 0
    deadline = hrt.now() + hrt.s(10)
    while hrt.now() < deadline:
        _RaisesInDel()
        mine += 1
        if sum(isinstance(a.exc_value, RuntimeError) for a in own_hook) == 2 * n:
            break
    gc.collect()
    ours = [a for a in own_hook if isinstance(a.exc_value, RuntimeError)]
    foreign = [a for a in own_hook if isinstance(a.exc_value, KeyError)]
    assert len(ours) == 2 * n and len(foreign) == mine
    assert {id(a.object.target) for a in ours} == {id(o) for o in objs}
    del handles


# ---------------------------------------------------------------- 16.5 asynchronous exceptions


class Injected(BaseException):
    """Stands for KeyboardInterrupt raised by a signal handler."""


_CALL_OPS = {op for name, op in dis.opmap.items() if name.startswith("CALL")}


def _inject_at(k: int) -> tuple[Callable[..., Any], list[int]]:
    """A tracer raising Injected at the k-th point, in the package's frames,
    where CPython runs a signal handler: a function's entry (its RESUME
    instruction) and right after a call returns (the eval-breaker check that
    follows CALL). count[0] is the number of points seen. The entry of a
    handle's ``__del__`` is not one of them: see docs/RELIABILITY.md."""
    count = [0]
    last_op: dict[int, int] = {}

    def point(frame: FrameType, what: str) -> None:
        count[0] += 1
        if count[0] == k:
            raise Injected(f"at point {k}: {what} {frame.f_code.co_name}:{frame.f_lineno}")

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        if not frame.f_code.co_filename.startswith(PKG_DIR):
            return None
        if frame.f_code.co_name == "__del__":
            return None
        frame.f_trace_opcodes = True
        if event == "call":
            point(frame, "entry of")
        elif event == "opcode":
            prev = last_op.get(id(frame))
            last_op[id(frame)] = frame.f_code.co_code[frame.f_lasti]
            if prev in _CALL_OPS:
                point(frame, "after a call in")
        elif event == "return":
            last_op.pop(id(frame), None)
        return tracer

    return tracer, count


def _start_scoped(o: Obj) -> None:
    o.start_scoped(FAR, lambda: None)


def _with_start(o: Obj) -> None:
    with o.start(FAR):
        pass


def _with_scoped(o: Obj) -> None:
    with o.scoped(FAR):
        pass


def _start_pinned(o: Obj) -> None:
    h = o.start_pinned(FAR)
    del h


def _restart_then_drop(o: Obj) -> None:
    h1 = o.start(FAR)
    h2 = o.start(FAR)
    del h1, h2


@pytest.mark.parametrize(
    "scenario", [_start_scoped, _with_start, _with_scoped, _start_pinned, _restart_then_drop],
    ids=lambda f: f.__name__.strip("_"),
)
def test_an_asynchronous_exception_at_any_step_leaves_no_timer_armed(
    scenario: Callable[[Obj], None],
) -> None:
    """16.5: an exception injected at each step of the start and exit paths
    (as a signal handler's KeyboardInterrupt would be): once it has
    propagated, the timer is not armed."""
    k = 1
    while True:
        o = Obj()
        tracer, count = _inject_at(k)
        injected = False
        sys.settrace(tracer)
        try:
            scenario(o)
        except Injected:
            injected = True
        finally:
            sys.settrace(None)
        armed = o.timer.is_active()
        o.timer._cancel()
        assert not armed, f"armed after an exception at point {k} of {count[0]}"
        if not injected:
            break
        k += 1
    assert k > 5, "the scenario went through too few steps to mean anything"


# ---------------------------------------------------------------- 16.6 quiet exit


def test_interpreter_exit_is_quiet_with_objects_held_by_an_imported_module(
    tmp_path: Path,
) -> None:
    """16.6: a module imported before the package (torn down after it) holds
    every kind of object; their finalizers, run once the package's module
    globals are gone, print nothing."""
    (tmp_path / "early.py").write_text("objs = []\n")
    (tmp_path / "main.py").write_text(textwrap.dedent(
        """
        import early
        import asyncio, sys, threading
        import hrtimer_cffi as hrt
        from hrtimer_cffi import aio
        from hrtimer_cffi.testing import ManualClock

        class T(hrt.HasTimer):
            timer = hrt.TimerField()
            def run(self, ctx):
                pass

        a, b, c, m = T(), T(), T(), T()
        scope = c.scoped(hrt.s(60))
        scope.__enter__()
        done = threading.Event()
        finished = hrt.call_later(0, done.set)
        assert done.wait(5)
        rec = hrt.LatencyRecorder(4)
        rec.start(hrt.s(60))
        mc = ManualClock()
        mc.attach(m)
        loop = asyncio.new_event_loop()
        task = loop.create_task(aio.sleep(hrt.s(60)))
        loop.run_until_complete(asyncio.sleep(0.01))
        early.objs += [
            a, a.start(hrt.s(60)), b, b.start_pinned(hrt.s(60)), c, scope, finished,
            hrt.call_later(hrt.s(60), print), rec, hrt.EventfdTimer(), hrt.ExpiryCounter(),
            mc, m, m.start(100), mc.call_later(50, print), loop, task,
            sys.modules["early"],   # keeps the module alive until its globals are cleared
        ]
        """
    ))
    proc = subprocess.run(
        [sys.executable, "main.py"], cwd=tmp_path, capture_output=True, text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, detail(proc)
    assert "Exception ignored" not in proc.stderr, detail(proc)
    assert "Error" not in proc.stderr, detail(proc)


# ---------------------------------------------------------------- 9.1 CTimer keeps fn


def test_ctimer_keeps_an_ffi_callback_alive() -> None:
    """9.1: a callback the caller does not keep was freed (segfault on fire)."""
    fired = threading.Event()

    def on_fire(t: Any, data: Any) -> int:
        fired.set()
        return 0

    cb = ffi.callback("int(struct hrt_timer *, void *)", on_fire)
    alive = weakref.ref(cb)
    t = hrt.CTimer(cb)
    del cb
    gc.collect()
    assert alive() is not None, "CTimer does not keep fn"
    t.start(hrt.ms(1))
    assert fired.wait(5.0)
    del t
    gc.collect()
    assert alive() is None


# ---------------------------------------------------------------- 9.5 fork and module locks


@pytest.mark.parametrize("where", ["TimerField", "aio"])
def test_a_child_forked_while_a_module_lock_is_held_does_not_hang(where: str) -> None:
    """9.5: another thread holds the lock at fork(); the child needs it."""
    lock, use = {
        "TimerField": (
            "hrt.has_timer._install_lock",
            """
            class T(hrt.HasTimer):
                timer = hrt.TimerField()
                def run(self, ctx):
                    pass
            T().timer   # first access: installs under the lock
            """,
        ),
        "aio": (
            "hrt.aio._states_lock",
            """
            import asyncio
            asyncio.run(hrt.aio.sleep(hrt.ms(1)))   # a new loop's state: under the lock
            """,
        ),
    }[where]
    proc = child(
        CHILD_PRELUDE
        + f"""
import warnings
warnings.simplefilter("ignore", DeprecationWarning)   # 3.12+: fork of a threaded process
import hrtimer_cffi.timer
held, release = threading.Event(), threading.Event()
def holder():
    with {lock}:
        held.set()
        release.wait(30)
threading.Thread(target=holder, daemon=True).start()
assert held.wait(5)
pid = os.fork()
if pid == 0:
    try:
{textwrap.indent(textwrap.dedent(use), "        ")}
    except BaseException as e:
        print("child error", repr(e), flush=True)
        os._exit(1)
    os._exit(0)
release.set()
print("child", wait_child(pid))
"""
    )
    assert proc.returncode == 0, detail(proc)
    assert "child 0" in proc.stdout, detail(proc)


# ---------------------------------------------------------------- 9.7 aio lost wake-up


def test_aio_wakes_up_after_a_first_sleep_that_failed_to_arm() -> None:
    """9.7: out of descriptors, the first sleep's timer cannot arm; that
    waiter must not stay at the head of the queue, or no later sleep wakes."""
    proc = child(
        """
        import asyncio, os, resource
        import hrtimer_cffi as hrt
        from hrtimer_cffi import aio

        async def main():
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            fill = []
            top = max(int(f) for f in os.listdir("/proc/self/fd"))
            while True:   # no gaps below top+1: the next descriptor is top+1
                fd = os.open("/dev/null", os.O_RDONLY)
                if fd > top:
                    os.close(fd)
                    break
                fill.append(fd)
            # room for the loop's eventfd, not for the expiry thread's
            resource.setrlimit(resource.RLIMIT_NOFILE, (top + 2, hard))
            try:
                await aio.sleep(hrt.ms(1))
                print("first sleep worked")
            except OSError as e:
                print("first sleep failed:", e)
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
                for fd in fill:
                    os.close(fd)
            try:
                await asyncio.wait_for(aio.sleep(hrt.ms(1)), 5.0)
                print("second sleep woke")
            except asyncio.TimeoutError:
                print("LOST WAKE-UP")

        asyncio.run(main())
        """
    )
    assert proc.returncode == 0, detail(proc)
    assert "first sleep failed" in proc.stdout, detail(proc)
    assert "second sleep woke" in proc.stdout, detail(proc)


# ---------------------------------------------------------------- 9.8 generation order


def test_a_rearm_from_the_callback_right_after_the_c_start_stays_newest() -> None:
    """9.8: the docs' pattern ``h = obj.start(0)``, the callback re-arms with
    ``self.h2 = self.start(...)``, then ``del h``. The callback (another
    thread) is made to run right after the C start of ``h``, at every trace
    event after it: ``del h`` must not cancel the re-arm."""
    o = Obj()
    rearmed: list[hrt.ArcTimerHandle] = []
    busy = [False]

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        if busy[0] or rearmed or not frame.f_code.co_filename.startswith(PKG_DIR):
            return tracer if not rearmed else None
        if o.timer.is_queued():   # the C start of h has armed it
            busy[0] = True
            try:
                rearmed.append(o.start(FAR + 1))   # what the callback does
            finally:
                busy[0] = False
        return tracer

    sys.settrace(tracer)
    try:
        h = o.start(FAR)
    finally:
        sys.settrace(None)
    assert rearmed, "the re-arm was not injected"
    assert o.timer.expires > hrt.now() + FAR - hrt.s(60)
    del h
    assert o.timer.is_queued(), "dropping the older handle cancelled the re-arm"
    rearmed[0].cancel()


# ---------------------------------------------------------------- 9.11 aio and closed loops


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_loop_closed_with_a_pending_waiter_is_freed() -> None:
    """9.11: its state held the loop through the waiters' futures."""
    gc.collect()
    before = _fds()
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    timers: list[weakref.ref[hrt.Timer]] = []
    for _ in range(5):
        loop = asyncio.new_event_loop()
        task = loop.create_task(aio.sleep(hrt.s(60)))
        loop.run_until_complete(asyncio.sleep(0.01))
        ref = aio._states[loop]
        st = ref() if isinstance(ref, weakref.ref) else ref
        assert st is not None
        timers += [weakref.ref(q.timer.timer) for q in st.queues.values()]
        del st
        loops.append(weakref.ref(loop))
        task._log_destroy_pending = False  # type: ignore[attr-defined]
        loop.close()
        del loop, task
    gc.collect()
    assert [r for r in loops if r() is not None] == []
    assert timers and [r for r in timers if r() is not None] == []
    assert _fds() == before


# ---------------------------------------------------------------- 9.12 dropped ManualClock


def test_a_dropped_manual_clock_with_armed_timers_is_collected() -> None:
    """9.12: core reference -> target -> Timer -> ManualClock kept it."""
    clocks: list[weakref.ref[ManualClock]] = []
    targets: list[weakref.ref[Obj]] = []
    for _ in range(500):
        mc = ManualClock()
        o = Obj()
        mc.attach(o)
        o.start(100).detach()
        mc.call_later(50, print).detach()
        clocks.append(weakref.ref(mc))
        targets.append(weakref.ref(o))
        del mc, o
    gc.collect()
    assert sum(r() is not None for r in clocks) == 0
    assert sum(r() is not None for r in targets) == 0


def test_a_timer_whose_manual_clock_is_gone_refuses_to_start() -> None:
    mc = ManualClock()
    o = Obj()
    mc.attach(o)
    del mc
    gc.collect()
    with pytest.raises(hrt.TimerStateError, match="ManualClock is gone"):
        o.start(10)
    assert not o.timer.is_active()


# ---------------------------------------------------------------- 9.14 clear errors


def test_eventfd_timer_fd_beyond_a_c_int_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="fd"):
        hrt.EventfdTimer(fd=2**31)


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), 1e12])
def test_latency_recorder_wait_with_an_unusable_timeout_is_a_value_error(
    timeout: float,
) -> None:
    rec = hrt.LatencyRecorder(4)
    try:
        with pytest.raises(ValueError, match="timeout"):
            rec.wait(timeout)
        with pytest.raises(TypeError):
            rec.wait("1")  # type: ignore[arg-type]
        assert rec.wait(0) is False and rec.wait(0.001) is False
    finally:
        rec.close()


class Index:
    """An integer type that is not int (as numpy's)."""

    def __init__(self, v: int) -> None:
        self.v = v

    def __index__(self) -> int:
        return self.v


def test_index_integers_are_accepted_by_unit_helpers_and_counts() -> None:
    assert (hrt.us(Index(3)), hrt.ms(Index(3)), hrt.s(Index(3))) == (3000, 3_000_000, 3 * 10**9)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hrt.ms(True)
    c = hrt.ExpiryCounter(limit=Index(2), interval=Index(hrt.ms(1)))  # type: ignore[arg-type]
    rec = hrt.LatencyRecorder(Index(3))  # type: ignore[arg-type]
    assert rec.capacity == 3 and type(rec.capacity) is int
    rec.close()
    fd = os.eventfd(0) if hasattr(os, "eventfd") else os.open("/dev/null", os.O_WRONLY)
    e = hrt.EventfdTimer(fd=Index(fd))  # type: ignore[arg-type]
    assert e.fileno() == fd
    e.close()
    os.close(fd)
    del c


SUBINTERP = """
import sys
try:
    import _interpreters as interp
except ImportError:
    import _xxsubinterpreters as interp
FIRST_IN_MAIN = {first_in_main}
if FIRST_IN_MAIN:
    import hrtimer_cffi
out = {out!r}
code = '''
try:
    import hrtimer_cffi
    result = "imported"
except ImportError as e:
    result = "ImportError: " + str(e)
except BaseException as e:
    result = "other: " + type(e).__name__ + ": " + str(e)
with open(%r, "w") as f:
    f.write(result)
''' % out
i = interp.create()
try:
    interp.run_string(i, code)
finally:
    interp.destroy(i)
print(open(out).read())
"""


@pytest.mark.parametrize("first_in_main", [True, False], ids=["second-import", "first-import"])
def test_import_in_a_sub_interpreter_is_a_clean_import_error(
    first_in_main: bool, tmp_path: Path,
) -> None:
    """9.14: on 3.11 a second import raised TimerStateError and a first one
    seemed to work while callbacks never ran."""
    out = tmp_path / "result.txt"
    proc = child(SUBINTERP.format(first_in_main=first_in_main, out=str(out)))
    assert proc.returncode == 0, detail(proc)
    assert "ImportError:" in proc.stdout, detail(proc)
    if sys.version_info < (3, 12):  # 3.12+ may refuse the cffi module itself first
        assert "sub-interpreter" in proc.stdout, detail(proc)


def test_no_expiry_thread_is_a_clear_error() -> None:
    """9.14: when pthread_create fails, start() said only
    ``BlockingIOError [Errno 11]``."""
    proc = child(
        """
        import hrtimer_cffi as hrt
        class T(hrt.HasTimer):
            timer = hrt.TimerField()
            def run(self, ctx):
                pass
        try:
            T().start(hrt.ms(1))
            print("started")
        except Exception as e:
            print(type(e).__name__, e)
        """,
        # A default thread stack this large cannot be mapped: pthread_create
        # fails with EAGAIN (glibc takes it from RLIMIT_STACK at start-up).
        preexec_fn=lambda: __import__("resource").setrlimit(
            __import__("resource").RLIMIT_STACK, (2**46, 2**46)
        ),
    )
    assert proc.returncode == 0, detail(proc)
    assert "RuntimeError" in proc.stdout and "expiry thread" in proc.stdout, detail(proc)
