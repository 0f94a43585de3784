"""Pinned pointer kind (the seed's ``UnsafeTimerPointer``, hrtimer/pin.rs):
``start_pinned()`` returns a handle that cannot be detached, so the timer
never outlives it."""

from __future__ import annotations

from typing import TypeVar

from .timer import TimerHandle, starter

__all__ = ["PinTimerHandle", "start_pinned"]


T = TypeVar("T")


class PinTimerHandle(TimerHandle[T]):
    """Handle from ``start_pinned()`` and ``scoped()``; ``detach()`` raises
    TypeError."""

    __slots__ = ()


start_pinned = starter(
    PinTimerHandle,
    """Like ``start`` (``expires``, ``slack``: ns or a timedelta, as there;
    raises as it does) but the handle cannot be detached
    (``UnsafeTimerPointer``).""",
)
