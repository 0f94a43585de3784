"""hrtimer_cffi: Linux-kernel hrtimers in user space, for Python.

A C core (a timer queue per clock: a run of appended timeouts and a 4-ary
heap; expiry threads on ``timerfd``) driven through cffi, with the Rust
hrtimer abstractions in Python spelling.

States of a timer, and what moves it between them::

                  start                    expire (soft expiry passed)
      +---------+ -------> +--------+ -----------------------> +---------+
      | Stopped |          | Queued |                          | Running |
      +---------+ <------- +--------+ <----------------------- +---------+
          ^        cancel     |  ^       restart (RESTART, or      |
          |                   |  |       start from the callback)  |
          |                   +--+                                 |
          |                  start (re-arm moves it)               |
          +--------------------------------------------------------+
                    callback returns NO_RESTART / None

* **Stopped**: not queued, no callback running (``is_active()`` is False).
* **Queued**: armed, waiting in its clock base (``is_queued()``).
* **Running**: its callback executes now (``is_callback_running()``); it may
  also be Queued again if it was re-armed meanwhile (by the callback or
  another thread).
* **start** arms (or re-arms) it; **cancel** removes it from the queue and
  waits for a running callback; **expire** runs the callback once the soft
  expiry has passed; **restart** re-queues it at its current (forwarded)
  expiry when the callback returns ``TimerRestart.RESTART`` (a ``start``
  from the callback re-arms it too, if its handle is kept or detached).

Pointer kinds: ``start`` is shared (the core keeps the object alive while
its timer is Queued or Running; the handle may be ``detach()``-ed),
``start_pinned`` gives a handle that cannot be detached, and the timer is
Stopped when ``start_scoped`` returns or a ``scoped`` block ends. Dropping a handle that is
not detached cancels the timer and waits for a running callback (never for
the callback that drops it); a handle superseded by a later ``start`` no
longer cancels on drop.

Errors: bad arguments raise TypeError or ValueError before anything is
armed; ``TimerStateError`` (an ``HrTimerError`` and a ``RuntimeError``) for
what the timer's state forbids; an exception in a callback goes to
``sys.unraisablehook`` and that timer is not restarted.

Times are int nanoseconds; see ``now``, ``us``, ``ms``, ``s``. A duration
(delay, interval, slack, sleep) may also be a ``datetime.timedelta``; an
absolute time (``call_at``, ``sleep_until``, an ABS timer's expiry) is int ns
on its clock only.
"""

from __future__ import annotations

from . import _binding as _binding
from . import aio as aio
from . import testing as testing
from ._include import get_include
from ._units import ClockId, TimerMode, TimerRestart, ms, now, s, us
from .arc import ArcTimerHandle
from .calls import Call, PeriodicCall, call_at, call_every, call_later
from .ctimer import CTimer, EventfdTimer, ExpiryCounter, LatencyRecorder
from .errors import HrTimerError, TimerStateError
from .has_timer import HasTimer, TimerField
from .pin import PinTimerHandle
from .sleep import sleep, sleep_until
from .stats import GilHandover, expiry_stats, gil_handover
from .timer import (
    CallbackContext,
    RawTimerCallback,
    ScopedTimerPointer,
    Timer,
    TimerCallback,
    TimerHandle,
    TimerPointer,
    UnsafeTimerPointer,
)

__all__ = [
    "ArcTimerHandle",
    "CTimer",
    "Call",
    "CallbackContext",
    "ClockId",
    "EventfdTimer",
    "ExpiryCounter",
    "GilHandover",
    "HasTimer",
    "HrTimerError",
    "LatencyRecorder",
    "PeriodicCall",
    "PinTimerHandle",
    "RawTimerCallback",
    "ScopedTimerPointer",
    "Timer",
    "TimerCallback",
    "TimerField",
    "TimerHandle",
    "TimerMode",
    "TimerPointer",
    "TimerRestart",
    "TimerStateError",
    "UnsafeTimerPointer",
    "aio",
    "call_at",
    "call_every",
    "call_later",
    "expiry_stats",
    "get_include",
    "gil_handover",
    "ms",
    "now",
    "s",
    "sleep",
    "sleep_until",
    "testing",
    "us",
]

__version__ = "0.1.0"
