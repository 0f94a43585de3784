"""``HasTimer`` and ``TimerField`` (the seed's ``HasTimer`` and
``impl_has_timer!``), and the dispatch of a fired timer to its target's
``run`` (what the host's ``RawTimerCallback::run`` calls).

This room sits above the pointer kinds (arc, pin, scoped): ``HasTimer.start``
and its siblings hand the work to them; they know only ``timer.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from . import _binding as _b
from ._units import ClockId, Duration, TimerMode, TimerRestart, check_clock, check_mode
from .arc import ArcTimerHandle
from .arc import start as _arc_start
from .errors import TimerStateError
from .pin import PinTimerHandle
from .pin import start_pinned as _pin_start
from .scoped import Scope, start_scoped
from .timer import CallbackContext, Timer

__all__ = ["HasTimer", "TimerField"]

R = TypeVar("R")
_S = TypeVar("_S", bound="HasTimer")

_install_lock = threading.Lock()


def _new_install_lock() -> None:
    # A child forked while another thread held the lock would wait forever.
    global _install_lock
    _install_lock = threading.Lock()


_b.reset_after_fork(_new_install_lock)


class TimerField:
    """Declares the timer of a ``HasTimer`` class (the seed's ``impl_has_timer!``).

    ``timer = TimerField(mode=TimerMode.REL, clock=ClockId.MONOTONIC)``: each
    instance gets its own ``Timer``, created on first access (thread-safe:
    concurrent first accesses see one timer). The attribute is read-only.

    The keywords ``hard`` and ``absolute`` say what the mode bits say, as the
    ``call_*`` functions' ``hard=True`` does: ``TimerField(hard=True)`` is
    ``TimerField(mode=TimerMode.REL | TimerMode.HARD)``, and
    ``absolute=True`` makes it ``ABS`` (``start(expires)`` then takes an
    absolute time in ns on ``clock``, never a delay). Without ``mode`` the
    timer is ``REL`` and SOFT. With both, they must agree: ``hard=True``
    adds ``HARD`` to a mode with neither ``HARD`` nor ``SOFT``. Raises
    TypeError/ValueError for a bad mode or clock, a non-bool ``hard`` or
    ``absolute``, or one that contradicts ``mode``, when the class is
    defined.
    """

    __slots__ = ("clock", "mode", "name")

    def __init__(
        self,
        mode: TimerMode | None = None,
        clock: ClockId = ClockId.MONOTONIC,
        *,
        hard: bool | None = None,
        absolute: bool | None = None,
    ) -> None:
        m = TimerMode.REL if mode is None else check_mode(mode)
        for key, flag in (("hard", hard), ("absolute", absolute)):
            if flag is not None and not isinstance(flag, bool):
                raise TypeError(f"{key} must be a bool or None, got {type(flag).__name__}")
        # A mode without HARD or SOFT leaves it open (SOFT by default); one
        # without REL is ABS (its value is 0).
        if hard is not None:
            if m & (TimerMode.SOFT if hard else TimerMode.HARD):
                raise ValueError(f"hard={hard} contradicts mode={m!r}")
            if hard:
                m |= TimerMode.HARD
        if absolute is not None:
            if mode is not None and bool(m & TimerMode.REL) is absolute:
                raise ValueError(f"absolute={absolute} contradicts mode={m!r}")
            if absolute:
                m &= ~TimerMode.REL
        self.mode = check_mode(m)
        self.clock = check_clock(clock)
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> TimerField: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> Timer: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> Timer | TimerField:
        if obj is None:
            return self
        try:
            return obj._hrt_t  # type: ignore[attr-defined, no-any-return]
        except AttributeError:
            return self.install(obj, Timer(self.mode, self.clock), replace=False)

    @staticmethod
    def install(obj: object, timer: Timer, *, replace: bool) -> Timer:
        """Make ``timer`` the timer of ``obj`` (unless it has one and not
        ``replace``); returns ``obj``'s timer. A racing first access from
        another thread gets the same timer. Raises TimerStateError for
        ``replace`` while ``obj``'s timer is active (queued or running: it
        would go on firing for ``obj``)."""
        # Stored beside the descriptor (an ordinary attribute keeps the
        # instance's attributes inline: no per-object dict).
        if replace:
            old = getattr(obj, "_hrt_t", None)
            if old is not None and old is not timer and old.is_active():
                raise TimerStateError(
                    "install(replace=True): the object's timer is active; cancel it first"
                )
            object.__setattr__(obj, "_hrt_t", timer)
            return timer
        with _install_lock:
            current: Timer | None = getattr(obj, "_hrt_t", None)
            if current is None:
                object.__setattr__(obj, "_hrt_t", timer)
                current = timer
            return current

    def __set__(self, obj: object, value: object) -> None:
        # Replacing the timer would free it (cancelling it) behind its handles.
        raise AttributeError(f"{type(obj).__name__}.{self.name} (a TimerField) is read-only")

    def __delete__(self, obj: object) -> None:
        raise AttributeError(f"{type(obj).__name__}.{self.name} (a TimerField) is read-only")

    def __repr__(self) -> str:
        return f"TimerField(mode={self.mode!r}, clock={self.clock!r})"


class HasTimer:
    """Base of objects that embed one timer (the seed's ``HasTimer``).

    Declare it with a ``TimerField`` class attribute and implement
    ``run(self, ctx)`` (``TimerCallback``). ``start``/``schedule`` return a
    shared handle, ``start_pinned`` a pinned one, ``start_scoped`` and
    ``scoped`` run code while the timer is armed. Defining a subclass with
    two TimerFields raises TypeError.
    """

    _hrt_field: ClassVar[str] = ""
    _hrt_startable: ClassVar[bool] = False  # has a TimerField and implements run

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = [
            name for klass in cls.__mro__ for name, v in vars(klass).items()
            if isinstance(v, TimerField)
        ]
        if len(set(fields)) > 1:
            raise TypeError(f"{cls.__name__} declares more than one TimerField: {fields}")
        if fields:
            cls._hrt_field = fields[0]
        cls._hrt_startable = bool(cls._hrt_field) and cls.run is not HasTimer.run

    def run(self, ctx: CallbackContext) -> TimerRestart | None:
        """The callback; subclasses implement it. Starting an object whose
        class does not raises TypeError."""
        raise NotImplementedError(f"{type(self).__name__} must implement run(self, ctx)")

    def _hrt_timer(self) -> Timer:
        cls = type(self)
        if cls._hrt_startable:
            try:
                return self._hrt_t  # type: ignore[attr-defined, no-any-return]
            except AttributeError:
                pass
        name = cls._hrt_field
        if not name:
            raise TypeError(
                f"{cls.__name__} has no TimerField: declare "
                "`timer = hrtimer_cffi.TimerField(...)` in the class"
            )
        if cls.run is HasTimer.run:
            raise TypeError(f"{cls.__name__} must implement run(self, ctx) to be started")
        timer: Timer = getattr(self, name)
        return timer

    # The start functions of the pointer kinds are the methods themselves
    # (the hot path: no call in between).
    if TYPE_CHECKING:

        def start(self: _S, expires: Duration, *, slack: Duration = 0) -> ArcTimerHandle[_S]:
            """Arm the timer; see ``arc.start``."""
            ...

        def start_pinned(
            self: _S, expires: Duration, *, slack: Duration = 0
        ) -> PinTimerHandle[_S]:
            """Arm the timer, pinned handle; see ``pin.start_pinned``."""
            ...

    else:
        start = _arc_start
        start_pinned = _pin_start

    schedule = start

    def start_scoped(self, expires: Duration, f: Callable[[], R], *, slack: Duration = 0) -> R:
        """Arm (``expires``, ``slack``: ns or a timedelta, as in ``start``),
        call ``f()``, cancel and wait; returns ``f()``'s result. When it
        returns (or raises) the timer is inactive and its callback not running.
        Raises as ``start`` (and TypeError for a non-callable ``f``) before
        arming; re-raises what ``f`` raises, after the timer is dead."""
        return start_scoped(self, expires, f, slack)

    schedule_scoped = start_scoped

    def scoped(
        self, expires: Duration, *, slack: Duration = 0
    ) -> AbstractContextManager[PinTimerHandle[Any]]:
        """Context manager form of ``start_scoped`` (``expires``, ``slack``: ns
        or a timedelta, as in ``start``): armed on entering, dead after the
        block; yields the pinned handle. Raises as ``start``, at this call,
        before arming."""
        return Scope(self, expires, slack)


def _dispatch(target: Any, timer: Timer, now: int) -> int:
    """Run ``target``'s callback for ``timer``, the one that fired; errors go
    to ``sys.unraisablehook``."""
    try:
        ctx = _new(CallbackContext)  # CallbackContext(timer, now), inline
        ctx.timer = timer
        ctx.now = now
        r = target.run(ctx)
        if r is None:
            return 0
        if type(r) is TimerRestart:
            return 1 if r is _RESTART else 0
        if type(r) is int and r in (0, 1):
            return r
        raise TypeError(f"run() must return a TimerRestart or None, got {r!r}")
    except BaseException as e:  # never let it reach the expiry thread
        # KeyboardInterrupt and the like inside ManualClock.advance() (the
        # caller's thread): the advance stops after this callback and raises it.
        if not isinstance(e, Exception) and _b.stop_advance(timer._c, e):
            return 0
        _b.report_unraisable(e, "timer callback of", target)
        return 0


_new = object.__new__
_RESTART = TimerRestart.RESTART
_b.set_dispatch(_dispatch)
