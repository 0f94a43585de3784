"""Shared pointer kind (the seed's ``Arc<T>``, hrtimer/arc.rs): ``start()``.

While the timer is armed or its callback runs, the core keeps the target
alive. The handle may be detached; leaking it is safe.
"""

from __future__ import annotations

from .timer import TimerHandle, TimerTarget, start_with

__all__ = ["ArcTimerHandle", "start"]


class ArcTimerHandle(TimerHandle):
    """Handle from ``start()``: dropping it cancels unless ``detach()``-ed.
    Its methods never raise."""

    __slots__ = ()

    def detach(self) -> None:
        """Dropping this handle will no longer cancel the timer; the handle
        stays usable for ``cancel()`` and introspection. Never raises."""
        self._detached = True


def start(target: TimerTarget, expires: object, slack: object = 0) -> ArcTimerHandle:
    """Arm ``target``'s timer; see ``HasTimer.start`` (raises the same)."""
    return start_with(ArcTimerHandle, target, expires, slack)
