"""Expiry-thread statistics of the process-wide timer base."""

from __future__ import annotations

from . import _binding as _b

__all__ = ["expiry_stats"]


def expiry_stats(hard: bool = True) -> dict[str, int]:
    """Counters of the HARD (default) or SOFT expiry thread: ``wakeups``,
    ``timers_run``, ``spurious`` (wake-ups that ran nothing), ``reprograms``
    (timerfd_settime calls), ``clock_sets`` (wall-clock jumps seen)."""
    return _b.domain_stats(None, hard)
