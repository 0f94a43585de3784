"""Pinned pointer kind (the seed's ``UnsafeTimerPointer``, hrtimer/pin.rs):
``start_pinned()`` returns a handle that cannot be detached, so the timer
never outlives it."""

from __future__ import annotations

from .timer import TimerHandle, TimerTarget, start_with

__all__ = ["PinTimerHandle", "start_pinned"]


class PinTimerHandle(TimerHandle):
    """Handle from ``start_pinned()`` and ``scoped()``; ``detach()`` raises
    TypeError."""

    __slots__ = ()


def start_pinned(target: TimerTarget, expires: object, slack: object = 0) -> PinTimerHandle:
    """Arm ``target``'s timer; see ``HasTimer.start_pinned`` (raises the same)."""
    return start_with(PinTimerHandle, target, expires, slack)
