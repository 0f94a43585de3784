"""Statistics of the process-wide timer base and of the GIL handover."""

from __future__ import annotations

from typing import NamedTuple

from . import _binding as _b

__all__ = ["GilHandover", "expiry_stats", "gil_handover"]


def expiry_stats(hard: bool = False) -> dict[str, int]:
    """Counters of the SOFT expiry thread, or with ``hard=True`` of the HARD
    ones (summed): ``wakeups``, ``timers_run``, ``spurious`` (wake-ups that
    ran nothing), ``reprograms`` (timerfd_settime calls), ``clock_sets``
    (wall-clock jumps seen). ``hard`` means what it means for
    ``call_later``, and defaults as there (and as ``ManualClock.stats``) to
    the default context, SOFT. Raises TypeError for a non-bool ``hard``."""
    return _b.domain_stats(None, _check_hard(hard))


def _check_hard(hard: object) -> bool:
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be a bool, got {type(hard).__name__}")
    return hard


class GilHandover(NamedTuple):
    """How Python callbacks get the GIL from a busy interpreter, and counts.

    ``mechanism`` is ``"pending-call"`` (CPython 3.12+: the thread running
    bytecode yields at its next bytecode boundary), ``"switch-interval"``
    (3.10, 3.11: the switch interval is lowered while an expiry thread waits,
    and put back as soon as it holds the GIL) or ``"none"`` (the expiry
    thread waits the switch interval, 5 ms by default, like any thread).
    ``requests``: times an expiry thread asked for the GIL early; ``yields``:
    times a thread running bytecode let it go; ``yield_timeouts``: yields
    that waited 1 ms in vain (the next holder was asked again).
    """

    mechanism: str
    requests: int
    yields: int
    yield_timeouts: int


def gil_handover() -> GilHandover:
    """The GIL handover this interpreter uses, with its counters."""
    st = _b.gil_handover_stats()
    return GilHandover(_b.gil_handover(), st["requests"], st["yields"], st["yield_timeouts"])
