"""C-callback timers: ``CTimer`` with a C function pointer + data, run on the
expiry thread without the GIL, and the builtins usable from Python
(``LatencyRecorder``, ``ExpiryCounter``, ``EventfdTimer``)."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hrtimer_cffi as hrt
from hrtimer_cffi import _binding

ABS_HARD = hrt.TimerMode.ABS | hrt.TimerMode.HARD
REL_SOFT = hrt.TimerMode.REL | hrt.TimerMode.SOFT


def wait_until(pred: Callable[[], bool], timeout: float) -> bool:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.0005)
    return True


def readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


# ---------------------------------------------------------------- LatencyRecorder


def test_latency_recorder_one_shot() -> None:
    rec = hrt.LatencyRecorder(1)
    t0 = hrt.now()
    rec.start(hrt.ms(2))
    assert rec.wait(5.0)
    assert hrt.now() - t0 >= hrt.ms(2)
    (late,) = rec.samples()
    assert 0 <= late < hrt.s(1)
    assert rec.count == 1 and not rec.timer.is_active()
    rec.close()


def test_latency_recorder_periodic_fills_and_stops() -> None:
    rec = hrt.LatencyRecorder(50, interval=hrt.ms(1))
    t0 = hrt.now()
    rec.start(hrt.ms(1))
    assert rec.wait(5.0)
    elapsed = hrt.now() - t0
    samples = rec.samples()
    assert len(samples) == 50 and rec.count == 50
    assert all(0 <= s < hrt.s(1) for s in samples)
    # Drift-free: 50 samples (plus what was skipped) need 50 intervals at least.
    assert elapsed >= hrt.ms(50 + rec.overruns) - hrt.us(500)
    assert isinstance(rec.overruns, int) and rec.overruns >= 0
    # Full: the timer stopped itself and the eventfd says so.
    assert wait_until(lambda: not rec.timer.is_active(), 1.0)
    assert readable(rec.fileno(), 0)
    time.sleep(0.01)
    assert rec.count == 50
    assert "50/50" in repr(rec)
    rec.close()
    assert rec.fileno() == -1 and rec.samples() == samples
    rec.close()  # idempotent


def test_latency_recorder_wait_times_out_and_counts_partial() -> None:
    rec = hrt.LatencyRecorder(1000, interval=hrt.ms(100))
    rec.start(hrt.ms(1))
    t0 = time.monotonic()
    assert rec.wait(0.05) is False
    assert 0.04 < time.monotonic() - t0 < 2.0
    assert wait_until(lambda: rec.count >= 1, 5.0)
    assert rec.count < 1000
    assert rec.cancel() is True
    rec.close()


def test_latency_recorder_restarted_after_close_posts_nothing() -> None:
    rec = hrt.LatencyRecorder(1)
    timer = rec.timer
    rec.close()
    # Reuse the freed descriptor number for something of ours.
    r, w = os.pipe()
    try:
        timer.start(hrt.ms(1))
        assert wait_until(lambda: not timer.is_active(), 2.0)
        assert not readable(r, 0.01)
    finally:
        os.close(r)
        os.close(w)


# ---------------------------------------------------------------- ExpiryCounter


def test_expiry_counter_periodic_with_limit() -> None:
    c = hrt.ExpiryCounter(interval=hrt.ms(1), limit=20)
    c.start(hrt.ms(1))
    assert wait_until(lambda: c.count == 20, 5.0)
    assert wait_until(lambda: not c.timer.is_active(), 1.0)
    time.sleep(0.01)
    assert c.count == 20
    assert "count=20" in repr(c)


def test_expiry_counter_cancel_before_expiry() -> None:
    c = hrt.ExpiryCounter()
    c.start(hrt.ms(200))
    assert c.timer.is_queued()
    assert c.cancel() is True
    assert c.cancel() is False
    assert c.timer.try_to_cancel() == 0
    time.sleep(0.3)
    assert c.count == 0


def test_soft_c_timer_runs_on_the_dispatch_context() -> None:
    c = hrt.ExpiryCounter(interval=hrt.ms(1), limit=5, mode=REL_SOFT)
    soft0 = hrt.expiry_stats(hard=False)["timers_run"]
    c.start(hrt.ms(1))
    assert wait_until(lambda: c.count == 5, 5.0)
    assert hrt.expiry_stats(hard=False)["timers_run"] >= soft0 + 5


# ---------------------------------------------------------------- EventfdTimer


def test_eventfd_timer_posts_per_expiry() -> None:
    e = hrt.EventfdTimer(interval=hrt.ms(1))
    e.start(hrt.ms(1))
    assert readable(e.fileno(), 5.0)
    time.sleep(0.02)
    n = e.read()
    assert n >= 2
    assert e.cancel() is True
    e.read()
    time.sleep(0.01)
    assert e.read() == 0  # never blocks; nothing after cancel
    e.close()
    assert e.fileno() == -1


def test_eventfd_timers_sharing_one_fd() -> None:
    r = hrt.EventfdTimer(mode=ABS_HARD)
    others = [hrt.EventfdTimer(mode=ABS_HARD, fd=r.fileno()) for _ in range(3)]
    t = hrt.now() + hrt.ms(2)
    for i, e in enumerate([r, *others]):
        e.start(t + i * hrt.us(100))
    assert wait_until(lambda: not any(e.timer.is_active() for e in [r, *others]), 5.0)
    assert r.read() == 4
    for e in others:
        e.close()
    # Closing a timer that posts to a shared fd leaves the fd open.
    assert os.fstat(r.fileno()) is not None
    r.close()


def test_eventfd_timer_restarted_after_close_posts_nothing() -> None:
    e = hrt.EventfdTimer()
    timer = e.timer
    e.close()
    r, w = os.pipe()  # likely takes the freed number
    try:
        timer.start(hrt.ms(1))
        assert wait_until(lambda: not timer.is_active(), 2.0)
        assert not readable(r, 0.01)
    finally:
        os.close(r)
        os.close(w)


# ---------------------------------------------------------------- no GIL


@pytest.mark.parametrize("py_hard", [False, True], ids=["py-soft", "py-hard"])
def test_c_callbacks_run_while_python_holds_the_gil(py_hard: bool) -> None:
    """A periodic HARD C recorder keeps firing while the main thread spins in
    pure Python (holding the GIL, switch interval 2 s) and a Python callback
    is due, SOFT or HARD (HARD Python timers have an expiry thread of their
    own, so their wait for the GIL never holds up HARD C timers). With the
    GIL handover switched off the Python callback cannot run meanwhile (with
    it, it does: tests/test_gil_handover.py)."""
    rec = hrt.LatencyRecorder(20, interval=hrt.ms(1))
    py_runs: list[int] = []
    p = hrt.call_every(hrt.ms(1), lambda: py_runs.append(1), hard=py_hard)
    old = sys.getswitchinterval()
    sys.setswitchinterval(2.0)
    _binding.set_gil_handover(False)
    try:
        time.sleep(0.01)  # let the Python timer start running
        rec.start(hrt.ms(1))
        py_before = len(py_runs)
        t_end = time.perf_counter() + 0.5
        while time.perf_counter() < t_end:  # holds the GIL: no blocking call
            pass
        c_during = rec.count
        py_during = len(py_runs) - py_before
    finally:
        _binding.set_gil_handover(True)
        sys.setswitchinterval(old)
        p.cancel()
        rec.close()
    assert c_during == 20, f"C callbacks ran {c_during} times in 500 ms"
    # Only at the spin's edges (C calls release the GIL), never the ~500 times
    # a GIL-free callback would have run.
    assert py_during <= 5, f"a Python callback ran {py_during} times without the GIL?"


# ---------------------------------------------------------------- a user C function


_USER_C = r"""
#define _GNU_SOURCE
#include <stdint.h>
#include <unistd.h>
struct rec { int64_t runs; int64_t tid; int64_t limit; };
int bump(void *timer, void *data)
{
    struct rec *r = data;
    r->tid = gettid();
    return __atomic_add_fetch(&r->runs, 1, __ATOMIC_RELEASE) < r->limit;
}
"""


@pytest.fixture(scope="module")
def user_lib(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    cffi = pytest.importorskip("cffi")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the user callback library")
    d: Path = tmp_path_factory.mktemp("usercb")
    (d / "usercb.c").write_text(_USER_C)
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-o", str(d / "usercb.so"), str(d / "usercb.c")],
        check=True,
    )
    ffi = cffi.FFI()
    ffi.cdef("struct rec { int64_t runs; int64_t tid; int64_t limit; };"
             "int bump(void *, void *);")
    return ffi, ffi.dlopen(str(d / "usercb.so"))


def test_ctimer_runs_a_user_c_function_with_its_data(user_lib: tuple[Any, Any]) -> None:
    ffi, lib = user_lib
    data = ffi.new("struct rec *")
    data.limit = 3
    # The callback returns RESTART (1) until `limit` runs; with no forward the
    # timer re-queues at its (past) expiry and runs again at once.
    t = hrt.CTimer(ffi.addressof(lib, "bump"), data, keep=data)
    t.start(hrt.ms(1))
    assert wait_until(lambda: data.runs == 3 and not t.is_active(), 5.0)
    assert data.tid not in (0, threading.get_native_id())  # on the expiry thread
    assert t.cancel() is False


def test_ctimer_accepts_a_builtin_pointer_and_rejects_bad_input() -> None:
    # A builtin by name, or as the function pointer itself.
    c = hrt.ExpiryCounter()
    t = hrt.CTimer("count", c._c, ABS_HARD)
    t.start(hrt.now() + hrt.ms(1))
    assert wait_until(lambda: c.count == 1, 5.0)
    fnptr = hrt._binding.BUILTIN_CALLBACKS["count"]
    t2 = hrt.CTimer(fnptr, c._c)
    t2.start(hrt.ms(1))
    assert wait_until(lambda: c.count == 2, 5.0)

    with pytest.raises(ValueError, match="unknown builtin"):
        hrt.CTimer("no-such-builtin")
    with pytest.raises(TypeError):
        hrt.CTimer(42)
    with pytest.raises(TypeError):
        hrt.CTimer(lambda t, d: 0)
    import cffi

    other = cffi.FFI()
    with pytest.raises(TypeError, match=r"int\(\*\)\(int\)"):
        hrt.CTimer(other.cast("int(*)(int)", 1))  # a C function of another signature
    with pytest.raises(TypeError):
        hrt.CTimer("count", data=5)
    with pytest.raises(ValueError, match="needs a struct hrt_counter"):
        hrt.CTimer("count")  # a builtin without its data
    with pytest.raises(ValueError, match="needs a struct hrt_latency_rec"):
        hrt.CTimer("latency", c._c)  # another builtin's data
    with pytest.raises(ValueError):
        hrt.CTimer("count", c._c, hrt.TimerMode.HARD | hrt.TimerMode.SOFT)
    with pytest.raises(ValueError):
        hrt.CTimer("count", c._c, clock=3)
    with pytest.raises(ValueError):
        t2.start(-1)
    with pytest.raises(TypeError):
        t2.start(1.0)
    with pytest.raises(ValueError):
        t2.start(1, slack=-1)
    with pytest.raises(ValueError):
        hrt.LatencyRecorder(0)
    with pytest.raises(TypeError):
        hrt.LatencyRecorder(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        hrt.ExpiryCounter(limit=-1)
    with pytest.raises(ValueError):
        hrt.EventfdTimer(interval=-1)
    with pytest.raises(ValueError):
        hrt.EventfdTimer(fd=-1)
    with pytest.raises(TypeError):
        hrt.EventfdTimer(fd=True)  # type: ignore[arg-type]
