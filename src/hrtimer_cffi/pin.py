"""Pinned pointer kind (the seed's ``UnsafeTimerPointer``, hrtimer/pin.rs):
``start_pinned()`` returns a handle that cannot be detached, so the timer
never outlives it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .timer import TimerHandle

if TYPE_CHECKING:
    from .timer import HasTimer

__all__ = ["PinTimerHandle", "start_pinned"]


class PinTimerHandle(TimerHandle):
    """Handle from ``start_pinned()`` and ``scoped()``; ``detach()`` raises
    TypeError."""

    __slots__ = ()


def start_pinned(target: HasTimer, expires: object, slack: object = 0) -> PinTimerHandle:
    """Arm ``target``'s timer; see ``HasTimer.start_pinned`` (raises the same)."""
    timer = target._hrt_timer()
    e, sl = timer._check_start(expires, slack)
    h = PinTimerHandle(timer, target)  # first: dropping it cancels
    timer._arm(h, e, sl)
    return h
