"""The binding layer: the only module that touches the compiled core's ``ffi``/``lib``.

It owns the ``extern "Python"`` trampoline (``RawTimerCallback::run``), maps
``-errno`` returns to exceptions (the one place that does), keeps the core's
host hooks installed, and handles interpreter exit and ``fork()``.
"""

from __future__ import annotations

import atexit
import errno
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ._core import ffi, lib
from .errors import TimerStateError

__all__ = ["ffi", "lib"]

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
    raise OSError(code, f"{what}: {os.strerror(code)}")


def check(rc: int, what: str) -> int:
    """Return ``rc`` unchanged if non-negative, else raise for ``-errno``."""
    if rc < 0:
        raise_errno(rc, what)
    return rc


# ---------------------------------------------------------------- trampoline

# Set by timer.py: runs a target's callback, returns enum hrt_restart.
_dispatch: Callable[[Any, CData, int], int] | None = None


def set_dispatch(fn: Callable[[Any, CData, int], int]) -> None:
    """Install the function the trampoline hands every due Python timer to."""
    global _dispatch
    _dispatch = fn


@ffi.def_extern()  # type: ignore[untyped-decorator]
def _hrt_trampoline(timer: CData, data: CData, now: int) -> int:
    """RawTimerCallback::run: C calls it; it finds the target and runs it."""
    target = ffi.from_handle(data)
    assert _dispatch is not None
    return _dispatch(target, timer, now)


# ---------------------------------------------------------------- unraisable

_UnraisableHookArgs: Any = None


def _capture_unraisable_type() -> Any:
    seen: list[Any] = []
    old = sys.unraisablehook
    sys.unraisablehook = seen.append

    class _Probe:
        def __del__(self) -> None:
            raise RuntimeError("probe")

    try:
        _Probe()
    finally:
        sys.unraisablehook = old
    return type(seen[0])


def report_unraisable(exc: BaseException, msg: str, obj: object) -> None:
    """Send ``exc`` to ``sys.unraisablehook`` as CPython does for ``__del__``."""
    global _UnraisableHookArgs
    if _UnraisableHookArgs is None:
        _UnraisableHookArgs = _capture_unraisable_type()
    args = _UnraisableHookArgs((type(exc), exc, exc.__traceback__, msg, obj))
    try:
        sys.unraisablehook(args)
    except BaseException:  # noqa: BLE001 - a broken hook must not kill the expiry thread
        pass


# ---------------------------------------------------------------- host, exit, fork

# The host hooks take a reference on a handle through its address.
_probe = ffi.new_handle(None)
if int(ffi.cast("uintptr_t", _probe)) != id(_probe):  # pragma: no cover
    raise ImportError(
        "hrtimer_cffi needs a cffi whose handles are the address of their "
        "cdata object (CPython's cffi); this one is not"
    )
del _probe

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
os.register_at_fork(after_in_child=_after_fork_child)


def is_closed() -> bool:
    """True once interpreter exit has stopped the core."""
    return _closed

