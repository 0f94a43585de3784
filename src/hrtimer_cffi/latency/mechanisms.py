"""The mechanisms: the raw timerfd floor, ours, and the table of all (the
peers are in ``peers``)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Sequence

from .. import _binding as _b
from .._units import TimerMode, TimerRestart, now
from ..ctimer import LatencyRecorder
from ..has_timer import HasTimer, TimerField
from ..sleep import sleep_until
from ..timer import CallbackContext, Timer
from . import peers
from .plan import Measurement, Periodic, Plan, timeout_note, wait_for

__all__ = ["MECHANISMS", "MODES", "Mechanism", "select"]

# ---------------------------------------------------------------- the limit


def _run_raw(plan: Plan) -> Measurement:
    """``_binding.raw_timerfd_loop`` in chunks of about PROGRESS_PERIOD_S (a
    chunk re-arms a fresh timerfd; its first wake-up is one interval later)."""
    samples: list[int] = []
    while len(samples) < plan.total:
        n = min(plan.every, plan.total - len(samples))
        try:
            samples.extend(_b.raw_timerfd_loop(plan.clock, plan.interval, n))
        except InterruptedError:
            # A signal: its Python handler runs now (Ctrl-C raises here);
            # a handler that returns lets the chunk start over.
            continue
        plan.report(len(samples))
    return Measurement(samples, None, note="overruns not visible: each wake-up is "
                       "measured against the latest expiry the timerfd reports")


# ---------------------------------------------------------------- ours


class _Probe(HasTimer):
    """A periodic ``HasTimer`` that records ``now - expires`` when its
    callback starts, forwards by the interval and restarts."""

    # Each instance gets its own Timer (mode and clock per run) in __init__.
    timer = TimerField(mode=TimerMode.ABS | TimerMode.HARD)

    def __init__(self, timer: Timer, plan: Plan) -> None:
        TimerField.install(self, timer, replace=True)
        self.clock = plan.clock
        self.interval = plan.interval
        self.total = plan.total
        self.samples: list[int] = []
        self.overruns = 0
        self.done = threading.Event()

    def run(self, ctx: CallbackContext) -> TimerRestart:
        late = now(self.clock) - ctx.timer.expires
        samples = self.samples
        samples.append(late)
        if len(samples) >= self.total:
            self.done.set()
            return TimerRestart.NO_RESTART
        self.overruns += ctx.forward(ctx.now, self.interval) - 1
        return TimerRestart.RESTART


def _run_python(plan: Plan, context: TimerMode) -> Measurement:
    probe = _Probe(Timer(TimerMode.ABS | context, plan.clock), plan)
    handle = probe.start(plan.first_expiry())
    try:
        finished = wait_for(probe.done.wait, lambda: len(probe.samples), plan)
    finally:
        handle.cancel()
    samples = list(probe.samples)
    return Measurement(samples, probe.overruns, finished,
                       None if finished else timeout_note(plan, len(samples)))


def _run_python_hard(plan: Plan) -> Measurement:
    return _run_python(plan, TimerMode.HARD)


def _run_python_soft(plan: Plan) -> Measurement:
    return _run_python(plan, TimerMode.SOFT)


def _run_c(plan: Plan) -> Measurement:
    rec = LatencyRecorder(plan.total, interval=plan.interval,
                          mode=TimerMode.ABS | TimerMode.HARD, clock=plan.clock)
    rec.start(plan.first_expiry())
    try:
        finished = wait_for(rec.wait, lambda: rec.count, plan)
    finally:
        rec.cancel()
    samples = rec.samples()
    return Measurement(samples, rec.overruns, finished,
                       None if finished else timeout_note(plan, len(samples)))


def _run_sleep(plan: Plan) -> Measurement:
    clock = plan.clock
    loop = Periodic(plan, plan.first_expiry())
    while not loop.done:
        sleep_until(loop.next, clock)
        loop.record(now(clock))
    return loop.measurement()


def _run_aio(plan: Plan) -> Measurement:
    from .. import aio

    clock = plan.clock
    loop = Periodic(plan, plan.first_expiry())

    async def run() -> None:
        sleep = aio.sleep_until
        while not loop.done:
            await sleep(loop.next, clock)
            loop.record(now(clock))

    asyncio.run(run())
    return loop.measurement()


@dataclasses.dataclass(frozen=True)
class Mechanism:
    """One row of the report: ``key`` (stable id), display ``name``, ``kind``
    (``limit``, ``ours`` or ``peer``), the ``--mode`` that selects it, and
    the function that measures it."""

    key: str
    name: str
    kind: str
    mode: str
    measure: Callable[[Plan], Measurement]


def _run_asyncio_hrt(plan: Plan) -> Measurement:
    """The asyncio ``call_at`` chain of the peers, on ``hrt.aio.EventLoop``."""
    from .. import aio

    return peers.asyncio_call_at_chain(plan, aio.new_event_loop)


# ---------------------------------------------------------------- the table


MECHANISMS: tuple[Mechanism, ...] = (
    Mechanism("raw-timerfd", "raw timerfd (floor)", "limit", "", _run_raw),
    Mechanism("python-hard", "Python HARD", "ours", "python-hard", _run_python_hard),
    Mechanism("python-soft", "Python SOFT", "ours", "python-soft", _run_python_soft),
    Mechanism("c-callback", "C callback", "ours", "c", _run_c),
    Mechanism("sleep-until", "sleep_until", "ours", "sleep", _run_sleep),
    Mechanism("aio", "aio.sleep_until", "ours", "aio", _run_aio),
    Mechanism("asyncio-hrt", "asyncio on hrt loop", "ours", "aio", _run_asyncio_hrt),
    Mechanism("time-sleep", "time.sleep loop", "peer", "peers", peers.run_time_sleep),
    Mechanism("threading-timer", "threading.Timer", "peer", "peers", peers.run_threading_timer),
    Mechanism("asyncio", "asyncio call_at", "peer", "peers", peers.run_asyncio),
    Mechanism("sched", "sched", "peer", "peers", peers.run_sched),
    Mechanism("os-timerfd", "os.timerfd loop", "peer", "peers", peers.run_os_timerfd),
)

#: The ``--mode`` values. The raw timerfd limit always runs: it is the reference.
MODES = ("python-hard", "python-soft", "c", "sleep", "aio", "peers", "all")


def select(modes: Sequence[str]) -> list[Mechanism]:
    """The mechanisms of ``modes`` (table order), the limit first."""
    wanted = set(modes)
    return [m for m in MECHANISMS
            if m.kind == "limit" or "all" in wanted or m.mode in wanted]
