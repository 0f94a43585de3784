"""The binding layer: the only module that touches the compiled core's ``ffi``/``lib``.

It installs the dispatch function the host's ``RawTimerCallback::run``
(csrc/host/pyhost.c) calls for every due Python timer, maps ``-errno``
returns to exceptions (the one place that does), keeps the core's host hooks
installed, and handles interpreter exit and ``fork()``.
"""

from __future__ import annotations

import atexit
import errno
import os
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

from . import _main_only as _main_only  # first: refuses a sub-interpreter
from ._core import ffi, lib
from .errors import TimerStateError

__all__ = [
    "check",
    "collect_errors",
    "raise_errno",
    "report_unraisable",
    "reset_after_fork",
    "set_dispatch",
]

CData = Any  # a cffi cdata object (cffi ships no type stubs)

# ---------------------------------------------------------------- errors


def raise_errno(rc: int, what: str) -> NoReturn:
    """Raise the exception that matches the core's ``-errno`` return ``rc``."""
    code = -rc
    if code == errno.EBUSY:
        raise TimerStateError(f"{what}: not allowed while the timer is queued or running")
    if code == errno.ESHUTDOWN:
        raise TimerStateError(f"{what}: the timer core has shut down (interpreter exit)")
    if code == errno.EDEADLK:
        raise TimerStateError(f"{what}: would wait for the calling callback itself")
    if code == errno.EINVAL:
        raise ValueError(f"{what}: invalid argument")
    if code == errno.EOPNOTSUPP:
        raise ValueError(f"{what}: not supported by this core")
    if code == errno.ENOMEM:
        raise MemoryError(f"{what}: out of memory")
    if code == errno.EAGAIN and what == "start()":
        # pthread_create's EAGAIN (OSError would make it a BlockingIOError).
        raise RuntimeError(
            f"{what}: cannot create the timer core's expiry thread: the process is at "
            "its thread limit (RLIMIT_NPROC, threads-max) or out of memory for a stack"
        )
    raise OSError(code, f"{what}: {os.strerror(code)}")


def check(rc: int, what: str) -> int:
    """Return ``rc`` unchanged if non-negative, else raise for ``-errno``."""
    if rc < 0:
        raise_errno(rc, what)
    return rc


# ---------------------------------------------------------------- dispatch

# The function the host's RawTimerCallback::run (hrt_py_run in
# csrc/host/pyhost.c) calls for every due Python timer: dispatch(target,
# timer, now) -> enum hrt_restart, with the target of the activation and
# the Timer that fired. Kept here as well as by the host.
_dispatch: Callable[[Any, Any, int], int] | None = None


def set_dispatch(fn: Callable[[Any, Any, int], int]) -> None:
    """Install the function the host hands every due Python timer to."""
    global _dispatch
    _dispatch = fn
    check(lib.hrt_py_set_dispatch(id(fn)), "installing the dispatch function")


# ---------------------------------------------------------------- unraisable


class _RaiseOnDel:
    """The descriptor behind ``_Unraisable.__del__``: binds to the report itself."""

    def __get__(self, report: _Unraisable, owner: type | None = None) -> _Unraisable:
        return report


class _Unraisable:
    """An error of a timer callback on its way to ``sys.unraisablehook``.

    Dropping it runs ``__del__``, which is the report itself: calling it
    re-raises the exception, so CPython's own finalizer path hands it (type,
    value, traceback) to whatever hook is installed, with this report as
    ``object``: its repr names the target, and ``target`` is the target.
    """

    __slots__ = ("exc", "msg", "target")
    __del__ = _RaiseOnDel()

    def __init__(self, exc: BaseException, msg: str, target: object) -> None:
        self.exc = exc
        self.msg = msg
        self.target = target

    def __call__(self) -> None:
        raise self.exc

    def __repr__(self) -> str:
        return f"{self.msg} {self.target!r}"


# The error lists of the ManualClock.advance() calls running on this thread,
# innermost last (see collect_errors).
_collecting = threading.local()


def report_unraisable(exc: BaseException, msg: str, obj: object) -> None:
    """Report ``exc`` through CPython's unraisable path (never replacing the
    installed ``sys.unraisablehook``); the hook's ``object`` is a report whose
    repr is ``msg`` and ``obj``'s repr, and whose ``target`` is ``obj``.

    Inside ``collect_errors()`` on this thread, ``exc`` is appended to the
    innermost collector instead, with a note naming ``msg`` and ``obj``."""
    stack: list[list[BaseException]] | None = getattr(_collecting, "stack", None)
    if stack:
        note = f"{msg} {obj!r}"
        if hasattr(exc, "add_note"):
            exc.add_note(note)
        else:  # 3.10: the notes the exceptiongroup backport prints
            exc.__notes__ = [*getattr(exc, "__notes__", ()), note]  # type: ignore[attr-defined]
        stack[-1].append(exc)
        return
    _Unraisable(exc, msg, obj)  # dropped at once: its __del__ reports


class collect_errors:
    """``with collect_errors() as errors:`` the callback errors this thread
    reports (callbacks of a ManualClock advanced on it) go to ``errors``, in
    order, instead of ``sys.unraisablehook``. Nests (the innermost collects)."""

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def __enter__(self) -> list[BaseException]:
        stack: list[list[BaseException]] | None = getattr(_collecting, "stack", None)
        if stack is None:
            stack = _collecting.stack = []
        stack.append(self.errors)
        return self.errors

    def __exit__(self, *exc_info: object) -> None:
        stack: list[list[BaseException]] = _collecting.stack
        stack.pop()


# ---------------------------------------------------------------- host, exit, fork

check(lib.hrt_py_install(), "installing the Python host hooks")

_closed = False


def _shutdown() -> None:
    """At interpreter exit: stop the expiry threads, then refuse callbacks."""
    global _closed
    if _closed:
        return
    _closed = True
    lib.hrt_domain_stop(ffi.NULL)
    lib.hrt_py_close()


def _after_fork_child() -> None:
    lib.hrt_fork_release_orphans()


atexit.register(_shutdown)
# Before the interpreter finishes its pending calls (3.13: ahead of atexit)
# no thread may be parked by the GIL handover (csrc/host/pyhost.c).
threading._register_atexit(lib.hrt_py_stop_handover)  # type: ignore[attr-defined]
os.register_at_fork(after_in_child=_after_fork_child)


# ---------------------------------------------------------------- GIL handover

GIL_HANDOVERS = {
    lib.HRT_HANDOVER_NONE: "none",
    lib.HRT_HANDOVER_INTERVAL: "switch-interval",
    lib.HRT_HANDOVER_PENDING: "pending-call",
}


def gil_handover() -> str:
    """How expiry threads get the GIL from a busy interpreter (see pyhost.c)."""
    return GIL_HANDOVERS[lib.hrt_py_handover()]


def set_gil_handover(on: bool) -> None:
    """Switch the GIL handover off or on (for side-by-side measurements)."""
    lib.hrt_py_set_handover(1 if on else 0)


def gil_handover_stats() -> dict[str, int]:
    """Counters of the GIL handover: requests, yields, yield_timeouts."""
    st = ffi.new("struct hrt_py_handover_stats *")
    lib.hrt_py_handover_stats(st)
    return {"requests": st.requests, "yields": st.yields,
            "yield_timeouts": st.yield_timeouts}


def reset_after_fork(fn: Callable[[], None]) -> None:
    """Run ``fn`` in every child after ``fork()`` (e.g. to replace a module's
    lock that another thread of the parent may have held)."""
    os.register_at_fork(after_in_child=fn)


# ---------------------------------------------------------------- timers
# Thin wrappers over the core for the public modules. Introspection needs no
# error mapping and is the C function itself.

NULL = ffi.NULL

timer_is_active = lib.hrt_timer_is_active
timer_is_queued = lib.hrt_timer_is_queued
timer_is_running = lib.hrt_timer_callback_running
timer_expires = lib.hrt_timer_get_expires
timer_soft_expires = lib.hrt_timer_get_softexpires
timer_remaining = lib.hrt_timer_get_remaining
timer_now = lib.hrt_timer_now
timer_clock = lib.hrt_timer_clock
timer_cancel = lib.hrt_timer_cancel
timer_try_to_cancel = lib.hrt_timer_try_to_cancel
_clock_gettime_ns = time.clock_gettime_ns
_UNSHIFTED_CLOCKS = frozenset((time.CLOCK_MONOTONIC, time.CLOCK_BOOTTIME))


def now(clock: int) -> int:
    """Now on ``clock`` (a Linux clock id), as the default domain sees it.
    MONOTONIC and BOOTTIME are read without a C call of the binding (which
    would release the GIL: costly in a callback under load); REALTIME and TAI
    go through the core, which applies the test hook's shift."""
    if clock in _UNSHIFTED_CLOCKS:
        return _clock_gettime_ns(clock)
    return int(lib.hrt_now(clock))


# A timer that is never set up: every operation on it is a harmless no-op
# (or -EINVAL). A Timer points here once its own timer is freed, so a
# finalizer that runs after its Timer's, in the same garbage cycle, is safe.
DEAD_TIMER = lib.hrt_timer_alloc()


def timer_new(domain: CData, clock: int, mode: int, fn: CData = None, data: CData = None,
              what: str = "Timer()", owner: object = None) -> CData:
    """Allocate and set up a timer; the caller frees it with ``timer_free``
    before it dies.

    Without ``fn`` it is a Python timer owned by ``owner`` (the Timer): the
    host's ``RawTimerCallback::run`` hands the target of each activation and
    ``owner`` to the dispatch function.
    """
    c = lib.hrt_timer_alloc()
    if c == ffi.NULL:
        raise MemoryError(f"{what}: out of memory")
    if fn is None:
        rc = lib.hrt_py_setup(c, domain or ffi.NULL, clock, mode, id(owner))
    else:
        rc = lib.hrt_timer_setup(c, domain or ffi.NULL, clock, mode, fn, data or ffi.NULL, 0)
    if rc < 0:
        lib.hrt_timer_free(c)
        raise_errno(rc, what)
    return c


timer_free = lib.hrt_timer_free  # cancels, waits for a running callback, frees


# Arm a Python timer: py_start(c, expires, slack, id(target)) -> 1, 0 or
# -errno (map with raise_errno). The core keeps ``target`` alive while the
# timer is active and hands it to the dispatch function; it takes its
# reference if this start activates the timer, so the caller holds
# ``target`` until the call returns.
py_start = lib.hrt_py_start


def ctimer_start(c: CData, expires: int, slack: int) -> None:
    """Arm a C-callback timer."""
    rc = lib.hrt_timer_start_range(c, expires, slack)
    if rc < 0:
        raise_errno(rc, "start()")


def timer_forward(c: CData, now: int, interval: int) -> int:
    rc = int(lib.hrt_timer_forward(c, now, interval))
    if rc < 0:
        raise_errno(rc, "forward()")
    return rc


def timer_forward_now(c: CData, interval: int) -> int:
    rc = int(lib.hrt_timer_forward_now(c, interval))
    if rc < 0:
        raise_errno(rc, "forward_now()")
    return rc


# ---------------------------------------------------------------- C callbacks

BUILTIN_CALLBACKS = {
    "latency": ffi.addressof(lib, "hrt_cb_latency"),
    "count": ffi.addressof(lib, "hrt_cb_count"),
    "eventfd": ffi.addressof(lib, "hrt_cb_eventfd"),
}
_CB_TYPE = ffi.typeof("hrt_callback_t")


def as_c_callback(fn: object) -> CData:
    """A C callback from a builtin's name or a cdata function pointer."""
    if isinstance(fn, str):
        try:
            return BUILTIN_CALLBACKS[fn]
        except KeyError:
            raise ValueError(
                f"unknown builtin C callback {fn!r}; expected one of {sorted(BUILTIN_CALLBACKS)}"
            ) from None
    if isinstance(fn, ffi.CData):
        ct = ffi.typeof(fn)
        if ct.kind == "pointer" and ct.item.kind == "function":
            ct = ct.item  # a pointer to a function type
        if (
            ct.kind == "function"
            and ct.result.cname == "int"
            and len(ct.args) == 2
            and all(a.kind == "pointer" for a in ct.args)
            and not ct.ellipsis
        ):
            return ffi.cast(_CB_TYPE, fn)
        raise TypeError(
            "fn must be a C function int (*)(struct hrt_timer *, void *), "
            f"got a cdata of type {ct.cname}"
        )
    raise TypeError(
        "fn must be a builtin C callback name or a cdata function pointer "
        f"int (*)(struct hrt_timer *, void *), got {type(fn).__name__}"
    )


_BUILTIN_DATA = {
    "latency": "struct hrt_latency_rec *",
    "count": "struct hrt_counter *",
    "eventfd": "struct hrt_eventfd_post *",
}


def check_builtin_data(name: str, data: object) -> None:
    """A builtin C callback needs its own struct as data: ValueError otherwise."""
    want = _BUILTIN_DATA[name]
    if not isinstance(data, ffi.CData) or ffi.typeof(data) is not ffi.typeof(want):
        raise ValueError(
            f"the builtin C callback {name!r} needs a {want} as data, got {data!r}; "
            "use LatencyRecorder / ExpiryCounter / EventfdTimer"
        )


def as_c_data(data: object) -> CData:
    """``void *`` data for a C callback: None (NULL) or a cdata pointer."""
    if data is None:
        return ffi.NULL
    if isinstance(data, ffi.CData):
        try:
            return ffi.cast("void *", data)
        except TypeError:
            pass
    raise TypeError(f"data must be None or a cdata pointer, got {type(data).__name__}")


def latency_rec_new(capacity: int, interval: int, done_fd: int) -> tuple[CData, CData]:
    """A latency recorder and its sample buffer (both freed with the recorder)."""
    samples = ffi.new("int64_t[]", capacity)
    rec = ffi.new("struct hrt_latency_rec *")
    rec.samples = samples
    rec.cap = capacity
    rec.interval = interval
    rec.done_fd = done_fd
    return rec, samples


def latency_count(rec: CData) -> int:
    return int(lib.hrt_latency_count(rec))


def latency_samples(rec: CData) -> list[int]:
    n = int(lib.hrt_latency_count(rec))
    return list(ffi.unpack(rec.samples, n))


def counter_new(interval: int, limit: int) -> CData:
    c = ffi.new("struct hrt_counter *")
    c.interval = interval
    c.limit = limit
    return c


def counter_value(c: CData) -> int:
    return int(lib.hrt_counter_value(c))


def eventfd_post_new(fd: int, interval: int) -> CData:
    p = ffi.new("struct hrt_eventfd_post *")
    p.fd = fd
    p.interval = interval
    return p


def eventfd_new() -> int:
    return check(lib.hrt_eventfd_new(), "eventfd()")


def eventfd_read(fd: int) -> int:
    return check(int(lib.hrt_eventfd_read(fd)), "reading an eventfd")


# The C functions themselves: finalizers bind them, and they work while the
# modules are torn down at exit.
fd_close = lib.hrt_fd_close


# ---------------------------------------------------------------- sleeping, raw loop


def sleep_until(clock: int, deadline: int) -> int:
    """Sleep to ``deadline``; returns ns late. After a signal whose handler
    returns, it sleeps on to the same deadline; a handler that raises
    propagates (the loop's back edge lets the interpreter run handlers)."""
    while True:
        rc = int(lib.hrt_py_sleep_until(clock, deadline))
        if rc >= 0:
            return rc
        if rc != -errno.EINTR:
            raise_errno(rc, "sleep_until()")


def raw_timerfd_loop(clock: int, interval: int, loops: int) -> list[int]:
    """The machine's limit: lateness of ``loops`` wake-ups of a plain timerfd."""
    out = ffi.new("int64_t[]", loops)
    rc = lib.hrt_raw_timerfd_loop(clock, interval, loops, out)
    if rc < 0:
        raise_errno(rc, "raw timerfd loop")
    return list(ffi.unpack(out, loops))


# ---------------------------------------------------------------- domains


def domain_new_manual(start: int) -> CData:
    p = ffi.new("struct hrt_domain **")
    check(lib.hrt_domain_new_manual(p, start), "ManualClock()")
    return p[0]


domain_free = lib.hrt_domain_free  # bound by ManualClock's finalizer: see fd_close


# The exception that stopped this thread's innermost stopped advance().
_stopped = threading.local()


def stop_advance(timer: CData, exc: BaseException) -> bool:
    """From ``timer``'s own callback inside ``advance()``: end that advance
    after this callback and have it raise ``exc``. False (nothing done) when
    the callback does not run inside an ``advance()``."""
    if lib.hrt_timer_stop_expiry(timer) != 0:
        return False
    _stopped.exc = exc
    return True


def domain_advance(d: CData, delta: int) -> int:
    rc = int(lib.hrt_domain_advance(d, delta))
    if rc == -errno.EINTR:
        exc: BaseException | None = getattr(_stopped, "exc", None)
        _stopped.exc = None
        if exc is not None:
            raise exc
    if rc < 0:
        raise_errno(rc, "advance()")
    return rc


def domain_next_expiry(d: CData, after: int) -> int:
    """A manual domain's earliest hard expiry later than ``after`` (its
    MONOTONIC ns; INT64_MAX if none)."""
    out = ffi.new("int64_t *")
    check(lib.hrt_domain_next_expiry(d, after, out), "next expiry")
    return int(out[0])


def domain_now(d: CData, clock: int) -> int:
    return int(lib.hrt_domain_now(d, clock))


def domain_stats(d: CData, hard: bool) -> dict[str, int]:
    st = ffi.new("struct hrt_stats *")
    check(lib.hrt_domain_stats(d or ffi.NULL, 1 if hard else 0, st), "stats")
    return {f: int(getattr(st, f)) for f in ("wakeups", "timers_run", "spurious",
                                             "reprograms", "clock_sets")}


def domain_shift_realtime(d: CData, delta: int) -> None:
    check(lib.hrt_domain_shift_realtime(d or ffi.NULL, delta), "shift_realtime")
