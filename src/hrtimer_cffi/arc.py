"""Shared pointer kind (the seed's ``Arc<T>``, hrtimer/arc.rs): ``start()``.

While the timer is armed or its callback runs, the core keeps the target
alive. The handle may be detached; leaking it is safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .timer import TimerHandle

if TYPE_CHECKING:
    from .timer import HasTimer

__all__ = ["ArcTimerHandle", "start"]


class ArcTimerHandle(TimerHandle):
    """Handle from ``start()``: dropping it cancels unless ``detach()``-ed.
    Its methods never raise."""

    __slots__ = ()

    def detach(self) -> None:
        """Dropping this handle will no longer cancel the timer; the handle
        stays usable for ``cancel()`` and introspection. Never raises."""
        self._detached = True


def start(target: HasTimer, expires: object, slack: object = 0) -> ArcTimerHandle:
    """Arm ``target``'s timer; see ``HasTimer.start`` (raises the same)."""
    timer = target._hrt_timer()
    e, sl = timer._check_start(expires, slack)
    h = ArcTimerHandle(timer, target)  # first: dropping it cancels
    timer._arm(h, e, sl)
    return h
