"""The package's exceptions."""

from __future__ import annotations

__all__ = ["HrTimerError", "TimerStateError"]


class HrTimerError(Exception):
    """Base of the package's own exceptions; never raised directly."""


class TimerStateError(HrTimerError, RuntimeError):
    """Raised for an operation that is illegal in the timer's current state.

    For example ``forward()`` on a queued timer, or on a timer whose callback
    runs on another thread (Linux warns there), or a start after interpreter
    exit has stopped the core.
    """
