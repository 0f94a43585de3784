"""Shared pointer kind (the seed's ``Arc<T>``, hrtimer/arc.rs): ``start()``.

While the timer is armed or its callback runs, the core keeps the target
alive. The handle may be detached; leaking it is safe.
"""

from __future__ import annotations

from typing import TypeVar

from .timer import TimerHandle, starter

__all__ = ["ArcTimerHandle", "start"]


T = TypeVar("T")


class ArcTimerHandle(TimerHandle[T]):
    """Handle from ``start()``: dropping it cancels unless ``detach()``-ed.
    Its methods never raise."""

    __slots__ = ()

    def detach(self) -> None:
        """Dropping this handle will no longer cancel the timer; the handle
        stays usable for ``cancel()`` and introspection. Never raises."""
        self._detached = True


start = starter(
    ArcTimerHandle,
    """Arm the timer (re-arm if armed), firing within ``[expires, expires +
    slack]``. ``expires``: on a REL timer a delay, int ns (``ms(5)``, not
    ``5``) or a ``datetime.timedelta``; on an ABS timer an absolute time in
    int ns on its clock (``now() + ms(5)``; ``ms(5)`` alone is 5 ms after the
    clock's zero, long past: it fires at once). ``slack``: ns (>= 0) or a
    timedelta.

    Returns a shared handle. Raises TypeError/ValueError for bad input (a
    wrong type, a timedelta as an absolute expiry, a negative relative expiry
    or slack, outside int64; a class without TimerField or run), before
    anything is armed; TimerStateError after interpreter exit has stopped the
    core or once the timer's ManualClock is gone. A start that raises after
    the arguments were checked (an asynchronous exception too) leaves the
    timer stopped.
    """,
)
