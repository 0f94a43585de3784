"""Scoped pointer kind (the seed's ``ScopedTimerPointer``): the timer is armed
for the extent of a call or a ``with`` block, and dead when it ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from . import _binding as _b
from .pin import PinTimerHandle
from .timer import Timer, TimerTarget

__all__ = ["Scope", "scoped", "start_scoped"]

R = TypeVar("R")


def start_scoped(target: TimerTarget, expires: object, f: Callable[[], R], slack: object = 0) -> R:
    """Arm, run ``f()``, then cancel and wait; see ``HasTimer.start_scoped``
    (raises the same)."""
    if not callable(f):
        raise TypeError(f"start_scoped() needs a callable f, got {type(f).__name__} {f!r}")
    with Scope(target, expires, slack):
        return f()


class Scope:
    """The context manager ``HasTimer.scoped()`` returns: arguments are checked
    when it is made (TypeError/ValueError, nothing armed); entering arms the
    timer and yields its pinned handle; leaving cancels and waits, whether the
    block raised or not. Entering it a second time raises RuntimeError."""

    __slots__ = ("_expires", "_handle", "_slack", "_target", "_timer")

    def __init__(self, target: TimerTarget, expires: object, slack: object = 0) -> None:
        self._target = target
        self._timer: Timer = target._hrt_timer()
        self._expires, self._slack = self._timer._check_start(expires, slack)
        self._handle: PinTimerHandle[Any] | None = None

    def __enter__(self) -> PinTimerHandle[Any]:
        if self._handle is not None:
            raise RuntimeError("a scoped() context manager cannot be entered twice")
        timer = self._timer
        # The handle first: dropping it cancels, and _arm cancels if it fails.
        h = self._handle = PinTimerHandle(timer, self._target)
        timer._arm(h, self._expires, self._slack)
        return h

    def __exit__(self, *exc: object) -> None:
        _b.timer_cancel(self._timer._c)


def scoped(target: TimerTarget, expires: object, slack: object = 0) -> Scope:
    """``Scope(target, expires, slack)``; see ``HasTimer.scoped`` (raises the same)."""
    return Scope(target, expires, slack)
