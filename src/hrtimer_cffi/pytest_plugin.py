"""The pytest plugin of hrtimer_cffi, registered through the ``pytest11``
entry point: the ``hrt_clock`` fixture, a fresh ``ManualClock`` for each
test, closed after it (its pending timers cancelled, their targets freed).

Nothing here runs at ``import hrtimer_cffi``: pytest imports this module
when it starts, and the package does not import it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import ManualClock

__all__ = ["hrt_clock"]


@pytest.fixture
def hrt_clock() -> Iterator[ManualClock]:
    """A ``ManualClock`` reading 0 on every clock; closed after the test."""
    clock = ManualClock()
    try:
        yield clock
    finally:
        clock.close()
