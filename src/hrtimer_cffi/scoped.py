"""Scoped pointer kind (the seed's ``ScopedTimerPointer``): the timer is armed
for the extent of a call or a ``with`` block, and dead when it ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from .pin import PinTimerHandle, start_pinned

if TYPE_CHECKING:
    from .timer import HasTimer

__all__ = ["scoped", "start_scoped"]

R = TypeVar("R")


def start_scoped(target: HasTimer, expires: object, f: Callable[[], R], slack: object = 0) -> R:
    """Arm, run ``f()``, then cancel and wait; see ``HasTimer.start_scoped``."""
    if not callable(f):
        raise TypeError(f"start_scoped() needs a callable f, got {type(f).__name__}")
    handle = start_pinned(target, expires, slack)
    try:
        return f()
    finally:
        handle.cancel()


@contextmanager
def scoped(target: HasTimer, expires: object, slack: object = 0) -> Iterator[PinTimerHandle]:
    """Context manager: armed inside the block, dead after it."""
    handle = start_pinned(target, expires, slack)
    try:
        yield handle
    finally:
        handle.cancel()
