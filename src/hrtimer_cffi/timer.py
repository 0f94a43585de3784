"""The timer and its traits: ``Timer``, the callback protocol,
``CallbackContext``, the pointer-kind protocols, and the ``TimerHandle`` every
pointer kind returns.

Mirrors rust/kernel/time/hrtimer.rs. The rooms above this one: the pointer
kinds in ``arc.py`` (shared), ``pin.py`` (pinned) and ``scoped.py`` (scoped),
as hrtimer/ splits them, and ``has_timer.py`` (``HasTimer``, ``TimerField``,
the dispatch of a fired timer to its target), which builds on all of them.
Arrows run one way: nothing here imports them.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from typing import (
    Any,
    Generic,
    Protocol,
    TypeVar,
    runtime_checkable,
)

from . import _binding as _b
from ._binding import CData
from ._units import (
    INT64_MAX,
    INT64_MIN,
    ClockId,
    TimerMode,
    TimerRestart,
    check_clock,
    check_interval,
    check_mode,
    check_nonneg,
    check_ns,
)

__all__ = [
    "CallbackContext",
    "RawTimerCallback",
    "ScopedTimerPointer",
    "Timer",
    "TimerCallback",
    "TimerHandle",
    "TimerPointer",
    "TimerTarget",
    "UnsafeTimerPointer",
    "starter",
]

R = TypeVar("R")
T = TypeVar("T")

# Every handle gets the next number when it is made, before its start arms
# the timer; the timer remembers the number of its newest start (see
# TimerHandle: only the newest handle cancels on drop).
arm_seq = itertools.count(1)


def _refuse_copy(self: object, protocol: object = None) -> Any:
    raise TypeError(
        f"a {type(self).__name__} cannot be copied or pickled: it owns a C timer"
    )


class Timer:
    """The intrusive timer embedded in a ``HasTimer`` object (the seed's ``Timer<T>``).

    Mode and clock are fixed at creation. Times are int ns on ``clock``; a
    relative REALTIME timer runs on MONOTONIC, as in Linux (``clock`` tells
    which). Raises TypeError/ValueError for a bad mode or clock (ValueError for
    ``TimerMode.PINNED`` and for SOFT together with HARD).
    """

    __slots__ = ("__weakref__", "_c", "_domain", "_gen", "_min_expires", "clock", "mode")

    def __init__(
        self,
        mode: TimerMode = TimerMode.REL,
        clock: ClockId = ClockId.MONOTONIC,
        *,
        _domain: Any = None,
    ) -> None:
        self.mode: TimerMode = check_mode(mode)
        requested = check_clock(clock)
        if _domain is not None:
            _domain.check_open()
        self._domain = _domain
        self._gen = 0
        rel = int(self.mode) & 1  # TimerMode.REL (enum arithmetic is slow)
        self._min_expires = 0 if rel else INT64_MIN
        self._c: CData = _b.timer_new(
            None if _domain is None else _domain.c, requested, self.mode, *self._callback(),
            owner=self,
        )
        if _domain is not None:
            _domain.timers.add(self)
        # A relative REALTIME timer runs on MONOTONIC, as in Linux.
        self.clock: ClockId = check_clock(_b.timer_clock(self._c))

    __reduce_ex__ = _refuse_copy

    def __del__(self, _dead: CData = _b.DEAD_TIMER, _free: Any = _b.timer_free) -> None:
        # Not ffi.gc: a cdata destructor may run before the finalizers of
        # handles in the same garbage cycle, which still use the timer. (The
        # defaults keep working while modules are torn down at exit.)
        c = getattr(self, "_c", None)
        if c is not None and c is not _dead:
            self._c = _dead
            _free(c)

    def _callback(self) -> tuple[CData, CData]:
        """(C function, data) of a C-callback timer; (None, None): a Python one."""
        return (None, None)

    # -- arming (used by the pointer kinds) --------------------------------

    def _check_start(self, expires: object, slack: object) -> tuple[int, int]:
        """Validated (expires, slack) for a start; raises TypeError/ValueError."""
        if (
            type(expires) is int
            and type(slack) is int
            and self._min_expires <= expires <= INT64_MAX
            and 0 <= slack <= INT64_MAX
        ):
            return expires, slack
        if self._min_expires == 0:
            e = check_nonneg("expires (relative)", expires)
        else:
            e = check_ns("expires", expires)
        return e, check_nonneg("slack", slack)

    def _arm(self, handle: TimerHandle[Any], expires: int, slack: int,
             _start: Any = _b.py_start, _id: Any = id) -> None:
        """Arm with validated values for ``handle``, made before: an exception
        from here on, or before the caller has the handle, leaves the timer
        stopped (the handle's drop-cancel covers the latter).

        ``handle`` becomes the newest before the C start: a callback that
        re-arms the timer (on another thread, as soon as it fires) makes a
        handle newer than this one, never older.
        """
        self._gen = handle._gen
        try:
            if self._domain is not None:
                self._domain.check_open()
            # The core takes its reference on the target if this start
            # activates the timer; until then the handle holds it.
            rc = _start(self._c, expires, slack, _id(handle._target))
            if rc < 0:
                _b.raise_errno(rc, "start()")
        except BaseException:
            _b.timer_cancel(self._c)
            raise

    def _cancel(self, _timer_cancel: Any = _b.timer_cancel) -> bool:
        # (Bound at definition: front ends' finalizers call it at exit too.)
        return bool(_timer_cancel(self._c))

    def _try_to_cancel(self) -> int:
        return int(_b.timer_try_to_cancel(self._c))

    # -- forward ------------------------------------------------------------

    def forward(self, now: int, interval: int) -> int:
        """Advance the expiry by whole ``interval``s until the soft expiry is
        after ``now``. ``now`` is an absolute time in int ns on the timer's
        clock; ``interval`` (> 0) is int ns or a ``datetime.timedelta``.

        Returns the number of intervals added (0 if ``now`` is before the soft
        expiry), as Linux's ``hrtimer_forward`` counted from the soft expiry (a
        timer run inside its slack window has expired). Both expiries move
        (the slack is kept). Legal while the timer is neither queued nor
        running, or from its own callback; else raises ``TimerStateError``.
        Raises TypeError (a ``now`` not int, an ``interval`` neither int nor
        timedelta) or ValueError (``interval`` <= 0, outside int64) for bad
        arguments.
        """
        return _b.timer_forward(self._c, check_ns("now", now), check_interval("interval", interval))

    def forward_now(self, interval: int) -> int:
        """``forward(now on the timer's clock, interval)``: ``interval`` is int
        ns or a timedelta; same rules, and raises as ``forward``."""
        return _b.timer_forward_now(self._c, check_interval("interval", interval))

    # -- introspection -------------------------------------------------------

    @property
    def expires(self) -> int:
        """Hard expiry: absolute ns on the timer's clock. Never raises."""
        return int(_b.timer_expires(self._c))

    @property
    def soft_expires(self) -> int:
        """Soft expiry (hard expiry minus slack): absolute ns on the timer's
        clock. Never raises."""
        return int(_b.timer_soft_expires(self._c))

    def remaining(self) -> int:
        """ns until the hard expiry (negative if overdue). Never raises."""
        return int(_b.timer_remaining(self._c))

    def now(self) -> int:
        """Now on the timer's clock (its ManualClock's, if it has one). Never raises."""
        return int(_b.timer_now(self._c))

    def is_active(self) -> bool:
        """Queued or its callback running (Linux ``hrtimer_active``). Never raises."""
        return bool(_b.timer_is_active(self._c))

    def is_queued(self) -> bool:
        """Armed and waiting to expire. Never raises."""
        return bool(_b.timer_is_queued(self._c))

    def is_callback_running(self) -> bool:
        """Its callback is executing right now. Never raises."""
        return bool(_b.timer_is_running(self._c))

    def _state(self) -> str:
        if self.is_callback_running():
            return "running+queued" if self.is_queued() else "running"
        return "queued" if self.is_queued() else "stopped"

    def __repr__(self) -> str:
        return (
            f"<Timer {self._state()} clock={self.clock.name} mode={self.mode!r} "
            f"expires={self.expires}>"
        )


class CallbackContext:
    """What a callback receives: its ``timer``, ``now`` (the time in int ns, on
    the timer's clock, at which the expiry run that calls it started) and
    ``forward``/``forward_now``, legal here while the callback runs; they
    raise as ``Timer.forward``."""

    __slots__ = ("now", "timer")

    def __init__(self, timer: Timer, now: int) -> None:
        self.timer = timer
        self.now = now

    def forward(self, now: int, interval: int) -> int:
        """``self.timer.forward(now, interval)`` (``now``: absolute int ns;
        ``interval``: int ns or a timedelta): returns intervals added. Raises
        as ``Timer.forward``."""
        return self.timer.forward(now, interval)

    def forward_now(self, interval: int) -> int:
        """``self.timer.forward_now(interval)`` (int ns or a timedelta):
        returns intervals added. Raises as ``Timer.forward``."""
        return self.timer.forward_now(interval)

    def __repr__(self) -> str:
        return f"<CallbackContext now={self.now} timer={self.timer!r}>"


@runtime_checkable
class TimerCallback(Protocol):
    """The seed's ``TimerCallback``: what a timer runs when it expires.

    An exception raised by ``run`` goes to ``sys.unraisablehook`` and the
    timer is not restarted; so does a return value that is neither None nor
    a ``TimerRestart``.
    """

    def run(self, ctx: CallbackContext) -> TimerRestart | None:
        """Called on expiry. Return ``RESTART`` to re-queue at the (forwarded)
        expiry; ``None`` or ``NO_RESTART`` to stop. What it raises goes to
        ``sys.unraisablehook``."""
        ...


class RawTimerCallback(Protocol):
    """The seed's ``RawTimerCallback::run``: what runs a fired Python timer.
    C's half is the host's ``hrt_py_run`` (csrc/host/pyhost.c), the callback
    of every Python timer; it calls the Python half with the activation's
    target, the ``Timer`` that fired and the expiry run's now, and gets
    ``enum hrt_restart`` back. ``has_timer._dispatch`` is the one
    implementation; it never raises (errors go to ``sys.unraisablehook``)."""

    def __call__(self, target: Any, timer: Timer, now: int) -> int: ...


class TimerHandle(Generic[T]):
    """A handle to a started timer (the seed's ``TimerHandle``), generic in
    its target's type.

    Dropping it (``del``, scope exit, garbage collection, from any thread)
    cancels the timer and waits for a running callback, unless it was
    detached; dropped inside its own timer's callback it cancels without
    waiting. A drop that cancels an armed timer is almost always a mistake
    (the result of ``start()`` discarded), so it also says so with a
    ``ResourceWarning`` naming the target (run with ``-X tracemalloc`` to see
    where the handle was made); a handle cancelled, detached or left through
    ``with`` drops silently. A timer may have several handles: ``cancel()``
    works through any of them, but only the handle of the newest ``start``
    cancels on drop, so ``h = t.start(a); h = t.start(b)`` leaves the timer
    armed at ``b``. Leaving a ``with`` block cancels and waits, whatever the
    handle. Handles are made by the pointer kinds (``HasTimer.start`` and
    friends), not by users. Only ``detach()`` of a non-shared handle raises.
    """

    # _gen: the number of the start that made it; negated once this handle
    # cancelled (cancelled(), and no second cancel on drop).
    __slots__ = ("__weakref__", "_detached", "_gen", "_target", "_timer")

    def __init__(self, timer: Timer, target: T) -> None:
        self._detached = False
        self._target = target
        # Taken before the start that makes this handle arms the timer.
        self._gen = next(arm_seq)
        self._timer = timer

    @property
    def target(self) -> T:
        """The callback target (the object that was started). Never raises."""
        return self._target

    @property
    def timer(self) -> Timer:
        """The target's ``Timer``. Never raises."""
        return self._timer

    @property
    def detached(self) -> bool:
        """True if dropping this handle no longer cancels the timer. Never raises."""
        return self._detached

    def when(self) -> int:
        """The absolute time, int ns on the timer's clock, at which the timer
        is set to fire: its soft expiry (it fires by ``when()`` + slack); the
        last one once it has fired or was cancelled. Never raises."""
        return int(_b.timer_soft_expires(self._timer._c))

    def cancelled(self) -> bool:
        """True once ``cancel()``, a ``try_to_cancel()`` that removed the
        timer, or leaving the ``with`` block was done through this handle (as
        asyncio's ``Handle.cancelled()``). Never raises."""
        return self._gen < 0

    def cancel(self) -> bool:
        """Cancel; True if the timer was queued. Waits for a running callback to
        return, except when called from that very callback (no deadlock): there
        it also stops a ``RESTART`` from re-queueing. Never raises."""
        r = _b.timer_cancel(self._timer._c)
        if self._gen > 0:
            self._gen = -self._gen
        return bool(r)

    def try_to_cancel(self) -> int:
        """1: was queued and is removed; 0: was not active; -1: its callback is
        running now (nothing done). Never waits, never raises."""
        r = int(_b.timer_try_to_cancel(self._timer._c))
        if r == 1 and self._gen > 0:
            self._gen = -self._gen
        return r

    def detach(self) -> None:
        """Only shared handles (from ``start()``) can detach: raises TypeError."""
        raise TypeError(
            f"a {type(self).__name__} cannot be detached; only shared handles from start() can"
        )

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(self, *exc: object, _cancel: Any = _b.timer_cancel) -> None:
        # The C cancel is the first call: nothing before it can be interrupted
        # but the entry of this method (see docs/RELIABILITY.md).
        _cancel(self._timer._c)
        if self._gen > 0:
            self._gen = -self._gen

    def __del__(self, _cancel: Any = _b.timer_cancel, _warn: Any = warnings.warn) -> None:
        # Only attribute reads before the C cancel (no call an asynchronous
        # exception could come after); after interpreter exit the core's
        # cancel is a harmless no-op. (The defaults are bound at definition:
        # module globals are gone at exit.)
        try:
            timer = self._timer
            gen = self._gen
        except AttributeError:
            return  # __init__ was interrupted: this handle never armed anything
        if not self._detached and timer._gen == gen and _cancel(timer._c) == 1:
            try:
                _warn(
                    f"{type(self).__name__} dropped while its timer was armed: the drop "
                    f"cancelled it (target {self._target!r}); keep the handle, cancel() "
                    "or detach() it, or use it in a with block",
                    ResourceWarning,
                    stacklevel=2,  # where it was dropped
                    source=self,   # under tracemalloc: where it was made
                )
            except Exception:  # at exit: warnings may be gone
                pass

    __reduce_ex__ = _refuse_copy

    def __repr__(self) -> str:
        extra = " detached" if self._detached else ""
        if self._gen < 0:
            extra += " cancelled"
        elif self._timer._gen != self._gen:
            extra += " superseded"
        return f"<{type(self).__name__} {self._timer._state()}{extra} target={self.target!r}>"


_H = TypeVar("_H", bound=TimerHandle[Any])


class TimerPointer(Protocol):
    """Pointer kinds whose handle may be leaked safely (``start``).
    ``start`` raises TypeError/ValueError for bad input, before arming."""

    def start(self, expires: int, *, slack: int = 0) -> TimerHandle[Any]:
        """Arm (re-arm if armed) at ``expires`` ns (relative or absolute by the
        timer's mode), within ``slack`` ns; raises TypeError/ValueError
        before arming."""
        ...


class UnsafeTimerPointer(Protocol):
    """Pointer kinds whose handle must not be leaked (``start_pinned``).
    ``start_pinned`` raises TypeError/ValueError for bad input, before arming."""

    def start_pinned(self, expires: int, *, slack: int = 0) -> TimerHandle[Any]:
        """Arm (re-arm if armed) at ``expires`` ns (relative or absolute by the
        timer's mode), within ``slack`` ns; raises TypeError/ValueError
        before arming."""
        ...


class ScopedTimerPointer(Protocol):
    """Pointer kinds started for the extent of a call (``start_scoped``).
    ``start_scoped`` raises TypeError/ValueError for bad input, before
    arming, and whatever ``f`` raises, after the timer is dead."""

    def start_scoped(self, expires: int, f: Callable[[], R], *, slack: int = 0) -> R:
        """Arm at ``expires`` ns (within ``slack`` ns), call ``f()``, cancel
        and wait; raises TypeError/ValueError before arming, and what ``f``
        raises."""
        ...


class TimerTarget(Protocol):
    """What a pointer kind starts: an object that owns a ``Timer`` (a
    ``HasTimer``) and gives it, or raises TypeError if it cannot be started."""

    def _hrt_timer(self) -> Timer: ...


_HK = TypeVar("_HK", bound=TimerHandle[Any])
_new = object.__new__
_py_start = _b.py_start


def starter(kind: type[_HK], doc: str) -> Callable[..., _HK]:
    """The start function of pointer kind ``kind``,
    ``start(target, expires, *, slack=0) -> kind``, documented by ``doc``
    (the pointer kinds' modules make theirs, ``HasTimer`` uses them as its
    methods).

    It arms ``target``'s timer and returns a ``kind`` handle for it. It
    raises TypeError/ValueError for bad arguments before anything is armed
    (the arguments are checked first), and TimerStateError as
    ``Timer._arm``; the handle is made before the timer is armed (dropping it
    cancels), and a start that fails leaves the timer stopped. This is the
    hot path: ``Timer._arm`` and ``TimerHandle.__init__`` are inlined, so
    the common case (a ``HasTimer`` whose timer exists, int arguments in
    range) costs one C call and no other Python call.
    """

    def start(target: TimerTarget, expires: object, *, slack: object = 0) -> _HK:
        try:
            timer: Timer = (
                target._hrt_t  # type: ignore[attr-defined]
                if type(target)._hrt_startable  # type: ignore[attr-defined]
                else target._hrt_timer()
            )
        except AttributeError:
            timer = target._hrt_timer()
        if not (
            type(expires) is int
            and type(slack) is int
            and timer._min_expires <= expires <= INT64_MAX
            and 0 <= slack <= INT64_MAX
        ):
            expires, slack = timer._check_start(expires, slack)
        h = _new(kind)
        h._detached = False
        h._target = target
        # The handle becomes the newest before the C start (see Timer._arm).
        h._gen = timer._gen = next(arm_seq)
        h._timer = timer
        try:
            if timer._domain is not None:
                timer._domain.check_open()
            rc = _py_start(timer._c, expires, slack, id(target))
            if rc < 0:
                _b.raise_errno(rc, "start()")
        except BaseException:
            _b.timer_cancel(timer._c)
            raise
        return h

    start.__doc__ = doc
    return start
