"""``hrtimer-latency``: a cyclictest-style wake-up latency tool.

Each mechanism wakes up periodically at ``--interval`` and records its
*lateness*: the time its code runs minus the intended absolute expiry (ns).
The mechanisms run one after another, never concurrently:

* the **limit**: a plain ``timerfd`` read in a C loop (the machine's floor);
* **ours**: a Python ``HasTimer`` on the HARD and on the SOFT context, the
  ``LatencyRecorder`` C callback, a ``sleep_until`` loop, and an
  ``aio.sleep_until`` loop;
* the **peers** from the standard library: a ``time.sleep`` loop, a
  ``threading.Timer`` chain, an asyncio ``loop.call_at`` chain and a
  ``sched.scheduler``.

The table reports min, p50, p90, p99, p99.9 and max in microseconds per
mechanism, and its p50 and p99 over those of the limit. Percentiles use the
nearest-rank method. ``--histogram`` writes cyclictest's histogram format
(one 1 us bucket per line, one column per mechanism), ``--plot`` a PNG of
all histograms, ``--json`` the results as JSON on stdout.

Usage: ``python -m hrtimer_cffi latency [options]`` or ``hrtimer-latency``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import sched
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from . import _binding as _b
from ._units import ClockId, TimerMode, TimerRestart, now
from .ctimer import LatencyRecorder
from .sleep import sleep_until
from .timer import CallbackContext, HasTimer, Timer, TimerField

__all__ = [
    "MECHANISMS",
    "MODES",
    "Measurement",
    "Plan",
    "Result",
    "build_parser",
    "main",
    "percentile",
    "run",
    "summarize",
]

PROG = "hrtimer-latency"
NS_PER_US = 1_000
NS_PER_S = 1_000_000_000

#: How often (in seconds of measuring) a mechanism reports its progress.
PROGRESS_PERIOD_S = 0.25
#: Runs expected to last longer than this show a progress indicator.
PROGRESS_MIN_S = 2.0


# ---------------------------------------------------------------- parsing

_TIME_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": NS_PER_S, "m": 60 * NS_PER_S,
               "h": 3600 * NS_PER_S}
_TIME_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]*)\s*$")


def parse_time(text: str, default_unit: str) -> int:
    """``"1000"``, ``"500us"``, ``"1ms"``, ``"2.5s"``: int ns. A bare number is in
    ``default_unit``. Raises ``argparse.ArgumentTypeError`` for anything else,
    and for values that are not > 0."""
    m = _TIME_RE.match(text.lower())
    if m is None or (m.group(2) and m.group(2) not in _TIME_UNITS):
        units = ", ".join(_TIME_UNITS)
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: a number (in {default_unit}) or a number with a "
            f"unit ({units}), e.g. 500us, 1ms, 10s"
        )
    value = float(m.group(1)) * _TIME_UNITS[m.group(2) or default_unit]
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive time (at least 1 ns)")
    if value >= 2**62:
        raise argparse.ArgumentTypeError(f"{text!r} is too long")
    return round(value)


def _interval_arg(text: str) -> int:
    return parse_time(text, "us")


def _duration_arg(text: str) -> int:
    return parse_time(text, "s")


def _int_at_least(text: str, minimum: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < minimum:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= {minimum}")
    return v


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _nonneg_int(text: str) -> int:
    return _int_at_least(text, 0)


def _clock_arg(text: str) -> ClockId:
    try:
        return ClockId[text.upper()]
    except KeyError:
        names = ", ".join(c.name.lower() for c in ClockId)
        raise argparse.ArgumentTypeError(
            f"unknown clock {text!r}; choose from {names}"
        ) from None


def _priority_arg(text: str) -> int:
    lo = os.sched_get_priority_min(os.SCHED_FIFO)
    hi = os.sched_get_priority_max(os.SCHED_FIFO)
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v != 0 and not lo <= v <= hi:
        raise argparse.ArgumentTypeError(
            f"priority {v} is out of range: 0 (normal scheduling) or {lo}..{hi} (SCHED_FIFO)"
        )
    return v


# ---------------------------------------------------------------- mechanisms


@dataclasses.dataclass
class Measurement:
    """What one mechanism measured: lateness per wake-up (ns), overruns
    (intervals skipped because a wake-up came more than an interval late;
    None where the mechanism cannot tell), whether it ran to the end, and a
    note for the report."""

    samples: list[int]
    overruns: int | None
    complete: bool = True
    note: str | None = None


class Plan:
    """How one mechanism runs: ``total`` wake-ups (``warmup`` of them first,
    not reported) every ``interval`` ns on ``clock``; ``report(done)`` is
    called about every ``PROGRESS_PERIOD_S`` from the measuring thread's safe
    points (never between a wake-up and its measurement)."""

    def __init__(
        self,
        clock: ClockId,
        interval: int,
        loops: int,
        warmup: int,
        report: Callable[[int], None],
        peer_offset: int = 0,
    ) -> None:
        self.clock = clock
        self.interval = interval
        self.loops = loops
        self.warmup = warmup
        self.total = loops + warmup
        self.report = report
        self.peer_offset = peer_offset
        # wake-ups between two progress reports
        self.every = max(1, int(PROGRESS_PERIOD_S * NS_PER_S) // interval)
        # give up waiting for a timer-driven mechanism after this long
        self.give_up_s = 10.0 + 5.0 * self.total * interval / NS_PER_S

    def first_expiry(self) -> int:
        """Absolute first expiry on ``clock``: one interval from now."""
        return now(self.clock) + self.interval


def _advance(nxt: int, t: int, interval: int) -> tuple[int, int]:
    """Next expiry after serving ``nxt`` at ``t``, and intervals skipped
    (expiries that had already passed at ``t``)."""
    nxt += interval
    if nxt > t:
        return nxt, 0
    skipped = (t - nxt) // interval + 1
    return nxt + skipped * interval, skipped


def _wait_for(done: Callable[[float], bool], count: Callable[[], int], plan: Plan) -> bool:
    """Wait for a timer-driven mechanism (``done(timeout)``), reporting
    progress; False if it did not finish in time."""
    give_up = time.monotonic() + plan.give_up_s
    while not done(PROGRESS_PERIOD_S):
        plan.report(count())
        if time.monotonic() > give_up:
            return False
    return True


def _timeout_note(plan: Plan, got: int) -> str:
    return f"stopped after {plan.give_up_s:.0f} s with {got} of {plan.total} wake-ups"


# -- the limit


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


# -- ours


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
        finished = _wait_for(probe.done.wait, lambda: len(probe.samples), plan)
    finally:
        handle.cancel()
    samples = list(probe.samples)
    return Measurement(samples, probe.overruns, finished,
                       None if finished else _timeout_note(plan, len(samples)))


def _run_python_hard(plan: Plan) -> Measurement:
    return _run_python(plan, TimerMode.HARD)


def _run_python_soft(plan: Plan) -> Measurement:
    return _run_python(plan, TimerMode.SOFT)


def _run_c(plan: Plan) -> Measurement:
    rec = LatencyRecorder(plan.total, interval=plan.interval,
                          mode=TimerMode.ABS | TimerMode.HARD, clock=plan.clock)
    rec.start(plan.first_expiry())
    try:
        finished = _wait_for(rec.wait, lambda: rec.count, plan)
    finally:
        rec.cancel()
    samples = rec.samples()
    return Measurement(samples, rec.overruns, finished,
                       None if finished else _timeout_note(plan, len(samples)))


def _run_sleep(plan: Plan) -> Measurement:
    clock, interval, every, report = plan.clock, plan.interval, plan.every, plan.report
    samples: list[int] = []
    overruns = 0
    nxt = plan.first_expiry()
    for i in range(1, plan.total + 1):
        sleep_until(nxt, clock)
        t = now(clock)
        samples.append(t - nxt)
        nxt, skipped = _advance(nxt, t, interval)
        overruns += skipped
        if i % every == 0:
            report(i)
    return Measurement(samples, overruns)


def _run_aio(plan: Plan) -> Measurement:
    from . import aio

    clock = plan.clock
    interval, every, report = plan.interval, plan.every, plan.report
    samples: list[int] = []
    overruns = 0

    async def loop() -> None:
        nonlocal overruns
        sleep = aio.sleep_until
        nxt = now(clock) + interval
        for i in range(1, plan.total + 1):
            await sleep(nxt, clock)
            t = now(clock)
            samples.append(t - nxt)
            nxt, skipped = _advance(nxt, t, interval)
            overruns += skipped
            if i % every == 0:
                report(i)

    asyncio.run(loop())
    return Measurement(samples, overruns)


# -- the peers (standard library; they know CLOCK_MONOTONIC only)


def _peer_clock_offset() -> tuple[int, str]:
    """ns to add to a ``time.monotonic()`` reading to get ``hrt.now()``.

    On Linux both read CLOCK_MONOTONIC, so it is 0; this is checked (the
    implementation ``time`` reports, and the readings agree within 1 ms).
    Elsewhere the measured offset is used.
    """
    impl = time.get_clock_info("monotonic").implementation
    best = None
    for _ in range(5):
        a = now()
        m = time.monotonic_ns()
        b = now()
        if best is None or b - a < best[0]:
            best = (b - a, (a + b) // 2 - m)
    assert best is not None
    offset = best[1]
    if "CLOCK_MONOTONIC" in impl and "RAW" not in impl and abs(offset) < 1_000_000:
        return 0, f"time.monotonic() is {impl}, as hrt.now(): offset {offset} ns (taken as 0)"
    return offset, f"time.monotonic() is {impl}: measured offset {offset} ns applied"


def _run_time_sleep(plan: Plan) -> Measurement:
    # time.sleep takes a relative delay: no clock conversion is needed.
    interval, every, report = plan.interval, plan.every, plan.report
    samples: list[int] = []
    overruns = 0
    tsleep = time.sleep
    nxt = now() + interval
    for i in range(1, plan.total + 1):
        d = nxt - now()
        if d > 0:
            tsleep(d / NS_PER_S)
        t = now()
        samples.append(t - nxt)
        nxt, skipped = _advance(nxt, t, interval)
        overruns += skipped
        if i % every == 0:
            report(i)
    return Measurement(samples, overruns)


def _run_threading_timer(plan: Plan) -> Measurement:
    interval, total = plan.interval, plan.total
    samples: list[int] = []
    state = {"next": now() + interval, "overruns": 0}
    done = threading.Event()
    stop = threading.Event()
    timers: list[threading.Timer] = []

    def arm() -> None:
        tm = threading.Timer((state["next"] - now()) / NS_PER_S, fire)
        tm.daemon = True
        timers[:] = [tm]
        tm.start()

    def fire() -> None:
        t = now()
        samples.append(t - state["next"])
        if len(samples) >= total:
            done.set()
            return
        state["next"], skipped = _advance(state["next"], t, interval)
        state["overruns"] += skipped
        if not stop.is_set():
            arm()

    arm()
    try:
        finished = _wait_for(done.wait, lambda: len(samples), plan)
    finally:
        stop.set()
        for tm in list(timers):
            tm.cancel()
    return Measurement(list(samples), state["overruns"], finished,
                       None if finished else _timeout_note(plan, len(samples)))


def _run_asyncio(plan: Plan) -> Measurement:
    interval, every, report, total = plan.interval, plan.every, plan.report, plan.total
    off = plan.peer_offset
    samples: list[int] = []
    overruns = 0
    loop = asyncio.new_event_loop()
    nxt = now() + interval

    def fire() -> None:
        nonlocal nxt, overruns
        t = now()
        samples.append(t - nxt)
        n = len(samples)
        if n >= total:
            loop.stop()
            return
        nxt, skipped = _advance(nxt, t, interval)
        overruns += skipped
        loop.call_at((nxt - off) / NS_PER_S, fire)
        if n % every == 0:
            report(n)

    try:
        loop.call_at((nxt - off) / NS_PER_S, fire)
        loop.run_forever()
    finally:
        loop.close()
    return Measurement(samples, overruns)


def _run_sched(plan: Plan) -> Measurement:
    interval, every, report, total = plan.interval, plan.every, plan.report, plan.total
    off = plan.peer_offset
    samples: list[int] = []
    overruns = 0
    s = sched.scheduler(time.monotonic, time.sleep)
    nxt = now() + interval

    def action() -> None:
        nonlocal nxt, overruns
        t = now()
        samples.append(t - nxt)
        n = len(samples)
        if n >= total:
            return
        nxt, skipped = _advance(nxt, t, interval)
        overruns += skipped
        s.enterabs((nxt - off) / NS_PER_S, 1, action)
        if n % every == 0:
            report(n)

    s.enterabs((nxt - off) / NS_PER_S, 1, action)
    s.run()
    return Measurement(samples, overruns)


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


MECHANISMS: tuple[Mechanism, ...] = (
    Mechanism("raw-timerfd", "raw timerfd (limit)", "limit", "", _run_raw),
    Mechanism("python-hard", "Python HARD", "ours", "python-hard", _run_python_hard),
    Mechanism("python-soft", "Python SOFT", "ours", "python-soft", _run_python_soft),
    Mechanism("c-callback", "C callback", "ours", "c", _run_c),
    Mechanism("sleep-until", "sleep_until", "ours", "sleep", _run_sleep),
    Mechanism("aio", "aio.sleep_until", "ours", "aio", _run_aio),
    Mechanism("time-sleep", "time.sleep loop", "peer", "peers", _run_time_sleep),
    Mechanism("threading-timer", "threading.Timer", "peer", "peers", _run_threading_timer),
    Mechanism("asyncio", "asyncio call_at", "peer", "peers", _run_asyncio),
    Mechanism("sched", "sched", "peer", "peers", _run_sched),
)

#: The ``--mode`` values. The raw timerfd limit always runs: it is the reference.
MODES = ("python-hard", "python-soft", "c", "sleep", "aio", "peers", "all")


def select(modes: Sequence[str]) -> list[Mechanism]:
    """The mechanisms of ``modes`` (table order), the limit first."""
    wanted = set(modes)
    return [m for m in MECHANISMS
            if m.kind == "limit" or "all" in wanted or m.mode in wanted]


# ---------------------------------------------------------------- load

#: ``--load`` values, and what each runs while every mechanism is measured.
LOADS: dict[str, str] = {
    "none": "none (an idle interpreter)",
    "python": "python (the main thread runs bytecode all along; the mechanisms are "
              "measured from a second thread)",
    "thread": "thread (a worker thread runs bytecode all along)",
    "cpu": "cpu (one busy process per CPU)",
}


def _spin(stop: threading.Event) -> int:
    """Pure bytecode until ``stop`` is set: holds the GIL but for the
    interpreter's own switches."""
    x = 0
    is_set = stop.is_set
    while not is_set():
        for i in range(200):
            x += i
    return x


@contextlib.contextmanager
def background_load(kind: str) -> Iterator[None]:
    """Run the ``thread`` or ``cpu`` load for the ``with`` block (``none``
    and ``python`` need nothing here: ``python`` is the measuring run's own
    main thread, see ``run``)."""
    if kind == "thread":
        stop = threading.Event()
        t = threading.Thread(target=_spin, args=(stop,), name="hrt-latency-load", daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()
    elif kind == "cpu":
        procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                 for _ in range(len(os.sched_getaffinity(0)))]
        try:
            yield
        finally:
            for pr in procs:
                pr.kill()
            for pr in procs:
                pr.wait()
    else:
        yield


# ---------------------------------------------------------------- statistics


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile ``q`` (0..100) of a sorted, non-empty sequence."""
    n = len(sorted_values)
    # the tolerance keeps float error (99.9 / 100 * 1000 = 999.0000000000001)
    # from moving the rank up by one
    rank = max(1, math.ceil(q * n / 100.0 - 1e-9))
    return sorted_values[min(rank, n) - 1]


PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9))


@dataclasses.dataclass
class Result:
    """One mechanism's row: its statistics (ns) or why it has none."""

    mechanism: Mechanism
    samples: list[int] = dataclasses.field(default_factory=list)
    overruns: int | None = None
    complete: bool = True
    available: bool = True
    failed: bool = False
    reason: str | None = None
    note: str | None = None
    seconds: float = 0.0
    stats: dict[str, float] = dataclasses.field(default_factory=dict)


def summarize(samples: Sequence[int]) -> dict[str, float]:
    """min, avg, p50, p90, p99, p99.9 and max of ``samples`` (ns)."""
    s = sorted(samples)
    out: dict[str, float] = {"min": float(s[0]), "avg": sum(s) / len(s)}
    for name, q in PERCENTILES:
        out[name] = float(percentile(s, q))
    out["max"] = float(s[-1])
    return out


# ---------------------------------------------------------------- system facts


def _timer_slack_ns() -> int | None:
    try:
        with open("/proc/self/timerslack_ns") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def _policy() -> str:
    policy = os.sched_getscheduler(0)
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO",
             os.SCHED_RR: "SCHED_RR", os.SCHED_BATCH: "SCHED_BATCH",
             os.SCHED_IDLE: "SCHED_IDLE"}
    name = names.get(policy, str(policy))
    if policy in (os.SCHED_FIFO, os.SCHED_RR):
        return f"{name} priority {os.sched_getparam(0).sched_priority}"
    return f"{name} (normal priority)"


def system_info() -> dict[str, Any]:
    """The machine facts the report prints."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "loadavg": _loadavg(),
    }


def set_priority(priority: int, err: TextIO) -> str | None:
    """Switch this thread (and the threads it starts later: the core's expiry
    threads, threading.Timer threads) to SCHED_FIFO ``priority``. On failure,
    print why on ``err`` and return the reason; the run goes on at normal
    priority."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as e:
        reason = f"SCHED_FIFO priority {priority} not permitted ({e.strerror})"
        err.write(
            f"{PROG}: {reason}; running at normal priority. SCHED_FIFO needs root, "
            f"CAP_SYS_NICE, or an RLIMIT_RTPRIO of at least {priority} (ulimit -r).\n"
        )
        return reason
    return None


# ---------------------------------------------------------------- progress


class Progress:
    """Progress on stderr for runs expected to last more than PROGRESS_MIN_S:
    on a terminal a refreshed line with a percentage, otherwise one line as
    each mechanism starts."""

    def __init__(self, stream: TextIO, enabled: bool, count: int) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = enabled and stream.isatty()
        self.count = count
        self.index = 0
        self.name = ""
        self.total = 1

    def begin(self, index: int, name: str, total: int, seconds: float,
              announce: bool = True) -> None:
        """A mechanism starts; ``announce``: say so on a non-terminal too."""
        self.index, self.name, self.total = index, name, max(1, total)
        if not self.enabled:
            return
        if self.tty:
            self.update(0)
        elif announce:
            self.say(f"[{index}/{self.count}] {name}: {total} wake-ups (~{seconds:.1f} s)")

    def say(self, text: str) -> None:
        """A line on a non-terminal (a terminal shows the refreshed line)."""
        if self.enabled and not self.tty:
            self.stream.write(f"{PROG}: {text}\n")
            self.stream.flush()

    def update(self, done: int) -> None:
        if not self.tty:
            return
        pct = min(100, 100 * done // self.total)
        self.stream.write(f"\r{PROG}: [{self.index}/{self.count}] {self.name:<20} {pct:3d}%")
        self.stream.flush()

    def end(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


# ---------------------------------------------------------------- running


def _measure(args: argparse.Namespace, load: str, prio_note: str | None, err: TextIO,
             abort: threading.Event) -> tuple[int, dict[str, Any], list[Result]]:
    """Measure every selected mechanism under ``load`` (already running);
    returns the status (0, 1 or 130), the run's facts and the rows."""
    interval: int = args.interval
    clock: ClockId = args.clock
    mechs = select(args.mode)

    if args.loops is not None:
        loops = args.loops
    else:
        loops = max(1, args.duration // (len(mechs) * interval))
    expected_s = len(mechs) * (loops + args.warmup * args.rounds) * interval / NS_PER_S
    progress = Progress(err, not args.quiet and expected_s > PROGRESS_MIN_S, len(mechs))

    def report(done: int) -> None:
        if abort.is_set():  # Ctrl-C reached the busy main thread (--load python)
            raise KeyboardInterrupt
        progress.update(done)

    peer_offset, peer_clock_note = _peer_clock_offset()

    rounds = min(args.rounds, loops)
    steps = rounds * len(mechs)
    progress.count = steps
    results = [Result(mech) for mech in mechs]
    status = 0
    interrupted = False
    step = 0
    for rnd in range(rounds):
        # this round's share of the wake-ups (the first rounds take the remainder)
        share = loops // rounds + (1 if rnd < loops % rounds else 0)
        if rounds > 1:
            secs = len(mechs) * (share + args.warmup) * interval / NS_PER_S
            progress.say(f"round {rnd + 1}/{rounds}: {len(mechs)} mechanisms x {share} "
                         f"wake-ups (~{secs:.1f} s)")
        for res in results:
            mech = res.mechanism
            step += 1
            if interrupted:
                if res.available and not res.samples:
                    res.available, res.reason = False, "not run: interrupted"
                continue
            if not res.available:
                continue
            plan = Plan(clock, interval, share, args.warmup, report, peer_offset)
            label = mech.name if rounds == 1 else f"{mech.name} (round {rnd + 1}/{rounds})"
            progress.begin(step, label, plan.total, plan.total * interval / NS_PER_S,
                           announce=rounds == 1)
            t0 = time.monotonic()
            try:
                m = mech.measure(plan)
            except KeyboardInterrupt:
                interrupted = True
                status = 130
                if not res.samples:
                    res.available, res.reason = False, "interrupted"
                progress.end()
                err.write(f"{PROG}: interrupted during {mech.name}; the rest is not run\n")
                continue
            except ImportError as e:
                res.available, res.reason = False, f"not importable: {e}"
                continue
            except Exception as e:  # one broken mechanism must not end the run
                res.available, res.failed = False, True
                res.reason = f"failed: {type(e).__name__}: {e}"
                status = 1
                continue
            finally:
                progress.end()
                res.seconds += time.monotonic() - t0
            got = m.samples[args.warmup:]
            if not got:
                res.available, res.reason = False, m.note or "no samples"
                status = 1
                continue
            res.samples.extend(got)
            if m.overruns is None:
                res.overruns = None
            elif rnd == 0 or res.overruns is not None:
                res.overruns = (res.overruns or 0) + m.overruns
            res.complete = res.complete and m.complete
            res.note = res.note or m.note
    for res in results:
        if res.available and res.samples:
            res.stats = summarize(res.samples)
        elif res.available:
            res.available, res.reason = False, res.reason or "no samples"

    info = {
        "interval_ns": interval,
        "loops": loops,
        "warmup": args.warmup,
        "rounds": rounds,
        "clock": clock.name,
        "modes": list(args.mode),
        "policy": _policy(),
        "priority_requested": args.priority,
        "priority_note": prio_note,
        "load": load,
        "gil_handover": _b.gil_handover(),
        "timer_slack_ns": _timer_slack_ns(),
        "peer_clock": peer_clock_note,
        "system": system_info(),
    }
    return status, info, results


def _measure_under(args: argparse.Namespace, load: str, prio_note: str | None,
                   err: TextIO) -> tuple[int, dict[str, Any], list[Result]]:
    """``_measure`` with ``load`` running. Under ``python`` the measuring runs
    in a second thread while this (main) thread runs bytecode; a Ctrl-C that
    lands here stops the measuring at its next progress point."""
    abort = threading.Event()
    if load != "python":
        with background_load(load):
            return _measure(args, load, prio_note, err, abort)
    box: list[tuple[int, dict[str, Any], list[Result]]] = []
    failure: list[BaseException] = []

    def measure() -> None:
        try:
            box.append(_measure(args, load, prio_note, err, abort))
        except BaseException as e:
            failure.append(e)
        finally:
            done.set()

    done = threading.Event()
    t = threading.Thread(target=measure, name="hrt-latency-measure")
    t.start()
    try:
        _spin(done)
    except KeyboardInterrupt:
        abort.set()  # the measuring stops and reports what it has (status 130)
    t.join()
    if failure:
        raise failure[0]
    return box[0]


def run(args: argparse.Namespace, out: TextIO | None = None,
        err: TextIO | None = None) -> int:
    """Run the measurement ``args`` describes, once per ``--load``; returns the
    exit status (0; 1 if a mechanism failed or an output could not be
    written; 130 if interrupted)."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    prio_note = set_priority(args.priority, err) if args.priority else None
    status = 0
    runs: list[tuple[dict[str, Any], list[Result]]] = []
    for load in args.load:
        if len(args.load) > 1 and not args.quiet:
            err.write(f"{PROG}: load {LOADS[load]}\n")
        st, info, results = _measure_under(args, load, prio_note, err)
        runs.append((info, results))
        status = st if st == 130 else max(status, st)
        if st == 130:
            break
    if args.json:
        doc = (to_json(*runs[0]) if len(runs) == 1 else
               {"tool": PROG, "runs": [to_json(i, r) for i, r in runs]})
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        for k, (info, results) in enumerate(runs):
            if k:
                out.write("\n")
            print_report(info, results, out)
        if len(runs) > 1:
            out.write("\n")
            print_comparison(runs, out)
    for info, results in runs:
        suffix = f"-{info['load']}" if len(runs) > 1 else ""
        if args.histogram:
            path = _with_suffix(args.histogram, suffix)
            try:
                write_histogram(path, results, args.histogram_max)
            except OSError as e:
                err.write(f"{PROG}: cannot write histogram {path}: {e}\n")
                status = status or 1
        if args.plot:
            path = _with_suffix(args.plot, suffix)
            try:
                write_plot(path, info, results)
            except OSError as e:
                err.write(f"{PROG}: cannot write plot {path}: {e}\n")
                status = status or 1
    out.flush()
    return status


def _with_suffix(path: str, suffix: str) -> str:
    """``hist.txt`` + ``-python`` = ``hist-python.txt``."""
    root, ext = os.path.splitext(path)
    return f"{root}{suffix}{ext}"


def _raw(results: Sequence[Result]) -> Result | None:
    for r in results:
        if r.mechanism.kind == "limit" and r.available:
            return r
    return None


def _ratio(r: Result, raw: Result | None, key: str) -> float | None:
    if raw is None or not r.available or raw.stats[key] <= 0:
        return None
    return r.stats[key] / raw.stats[key]


def print_report(info: dict[str, Any], results: Sequence[Result], out: TextIO) -> None:
    """The header and one row per mechanism."""
    sysinfo = info["system"]
    slack = info["timer_slack_ns"]
    slack_text = "unknown" if slack is None else f"{slack} ns"
    iv_us = info["interval_ns"] / NS_PER_US
    w = out.write
    rounds = info["rounds"]
    w(f"{PROG}: interval {iv_us:g} us, {info['loops']} wake-ups per mechanism "
      + (f"in {rounds} interleaved rounds " if rounds > 1 else "")
      + f"(+{info['warmup']} warm-up{' per round' if rounds > 1 else ''}, not counted), "
      f"clock {info['clock']}\n")
    w(f"policy: {info['policy']}; timer slack: {slack_text} (main thread; the core's expiry "
      f"threads, sleep_until and the raw loop use 1 ns); loadavg: {sysinfo['loadavg']}\n")
    w(f"machine: {sysinfo['cpus']} CPUs, {sysinfo['cpu_model']}, Linux {sysinfo['kernel']}, "
      f"{sysinfo['python']}\n")
    w(f"load: {LOADS[info['load']]}; GIL handover: {info['gil_handover']}\n")
    w("lateness = when the code runs - intended absolute expiry, in us; "
      "p50/p99 x raw = over the raw timerfd limit\n\n")
    cols = ("min", "p50", "p90", "p99", "p99_9", "max")
    head = ("mechanism", "wakeups", "overrun", "min", "p50", "p90", "p99", "p99.9", "max",
            "p50xraw", "p99xraw")
    w(f"{head[0]:<20} {head[1]:>7} {head[2]:>7} "
      + " ".join(f"{h:>8}" for h in head[3:9]) + f" {head[9]:>7} {head[10]:>7}\n")
    raw = _raw(results)
    for r in results:
        name = r.mechanism.name
        if not r.available:
            w(f"{name:<20} unavailable: {r.reason}\n")
            continue
        ovr = "-" if r.overruns is None else str(r.overruns)
        vals = " ".join(f"{r.stats[c] / NS_PER_US:8.1f}" for c in cols)
        ratios = []
        for key in ("p50", "p99"):
            x = _ratio(r, raw, key)
            ratios.append(f"{x:7.2f}" if x is not None else f"{'-':>7}")
        w(f"{name:<20} {len(r.samples):>7} {ovr:>7} {vals} {ratios[0]} {ratios[1]}\n")
    notes = [(r.mechanism.name, r.note) for r in results if r.available and r.note]
    if notes:
        w("\n")
        for name, note in notes:
            w(f"note: {name}: {note}\n")
    w(f"note: peers run on CLOCK_MONOTONIC ({info['peer_clock']})\n")


def print_comparison(runs: Sequence[tuple[dict[str, Any], Sequence[Result]]],
                     out: TextIO) -> None:
    """p50 and p99 of each mechanism under each load, side by side (us)."""
    w = out.write
    loads = [info["load"] for info, _ in runs]
    w("side by side: p50 / p99 lateness in us under each load\n")
    w(f"{'mechanism':<20}" + "".join(f" {load:>19}" for load in loads) + "\n")
    for i, first in enumerate(runs[0][1]):
        cells = []
        for _, results in runs:
            r = results[i]
            cells.append(f"{r.stats['p50'] / NS_PER_US:9.1f} /{r.stats['p99'] / NS_PER_US:8.1f}"
                         if r.available else f"{'-':>19}")
        w(f"{first.mechanism.name:<20}" + "".join(f" {c:>19}" for c in cells) + "\n")


def to_json(info: dict[str, Any], results: Sequence[Result]) -> dict[str, Any]:
    """The report as a JSON-ready dict; times in us."""
    raw = _raw(results)
    rows = []
    for r in results:
        row: dict[str, Any] = {
            "key": r.mechanism.key,
            "name": r.mechanism.name,
            "kind": r.mechanism.kind,
            "available": r.available,
            "reason": r.reason,
        }
        if r.available:
            row.update({
                "wakeups": len(r.samples),
                "overruns": r.overruns,
                "complete": r.complete,
                "note": r.note,
                "seconds": round(r.seconds, 3),
            })
            for k, v in r.stats.items():
                row[f"{k}_us"] = round(v / NS_PER_US, 3)
            for k in ("p50", "p99"):
                x = _ratio(r, raw, k)
                row[f"{k}_ratio_to_raw"] = None if x is None else round(x, 3)
        rows.append(row)
    return {"tool": PROG, "config": info, "results": rows}


# ---------------------------------------------------------------- histogram, plot


def default_histogram_max(interval: int) -> int:
    """Histogram buckets (1 us each) when --histogram-max is not given."""
    return max(1000, 2 * interval // NS_PER_US)


def write_histogram(path: str, results: Sequence[Result], buckets: int | None) -> None:
    """cyclictest's histogram (``cyclictest -h N`` output): one ``%06d`` line
    per 1 us bucket with one column per mechanism, then the totals, min,
    average and max latencies (us), overflows and the cycle numbers that
    overflowed. A comment line first names the columns. Negative lateness
    (a wake-up before its expiry) counts in bucket 0."""
    rows = [r for r in results if r.available]
    if buckets is None:
        buckets = 1000
    hist = [[0] * buckets for _ in rows]
    over = [0] * len(rows)
    outliers: list[list[int]] = [[] for _ in rows]
    lines = ["# hrtimer-latency histogram: 1 us buckets; columns: "
             + ", ".join(f"{i + 1}={r.mechanism.key}" for i, r in enumerate(rows)) + "\n",
             "# Histogram\n"]
    for j, r in enumerate(rows):
        h = hist[j]
        for cycle, v in enumerate(r.samples):
            b = max(0, v) // NS_PER_US
            if b >= buckets:
                over[j] += 1
                if len(outliers[j]) < buckets:
                    outliers[j].append(cycle)
            else:
                h[b] += 1
    for i in range(buckets):
        lines.append(f"{i:06d} " + "\t".join(f"{hist[j][i]:06d}" for j in range(len(rows)))
                     + "\n")

    def row(label: str, values: Sequence[int], fmt: str) -> str:
        return f"# {label}:" + "".join(" " + format(v, fmt) for v in values) + "\n"

    lines.append(row("Total", [sum(h) for h in hist], "09d"))
    lines.append(row("Min Latencies", [max(0, min(r.samples)) // NS_PER_US for r in rows],
                     "05d"))
    lines.append(row("Avg Latencies",
                     [max(0, sum(r.samples) // len(r.samples)) // NS_PER_US for r in rows],
                     "05d"))
    lines.append(row("Max Latencies", [max(0, max(r.samples)) // NS_PER_US for r in rows],
                     "05d"))
    lines.append(row("Histogram Overflows", over, "05d"))
    lines.append("# Histogram Overflow at cycle number:\n")
    for j in range(len(rows)):
        text = "".join(f" {c:05d}" for c in outliers[j])
        if len(outliers[j]) < over[j]:
            text += f" # {over[j] - len(outliers[j]):05d} others"
        lines.append(f"# Thread {j}:{text}\n")
    lines.append("\n")
    with open(path, "w") as f:
        f.writelines(lines)


def _import_pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend; raises ImportError."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plot(path: str, info: dict[str, Any], results: Sequence[Result]) -> None:
    """All mechanisms' lateness histograms on one figure, log-log."""
    plt = _import_pyplot()
    rows = [r for r in results if r.available]
    lo = min(max(0.1, min(r.samples) / NS_PER_US) for r in rows)
    hi = max(max(r.samples) / NS_PER_US for r in rows)
    hi = max(hi, lo * 10)
    nbins = 120
    edges = [lo * (hi * 1.001 / lo) ** (i / nbins) for i in range(nbins + 1)]
    fig, ax = plt.subplots(figsize=(12, 7), dpi=110)
    styles = {"limit": ("-", 2.6), "ours": ("-", 1.6), "peer": ("--", 1.6)}
    colors = plt.get_cmap("tab10").colors
    for i, r in enumerate(rows):
        ls, lw = styles[r.mechanism.kind]
        data = [max(lo, v / NS_PER_US) for v in r.samples]
        color = "black" if r.mechanism.kind == "limit" else colors[i % len(colors)]
        ax.hist(data, bins=edges, histtype="step", linestyle=ls, linewidth=lw, color=color,
                label=f"{r.mechanism.name}: p50 {r.stats['p50'] / NS_PER_US:.1f} us, "
                      f"p99 {r.stats['p99'] / NS_PER_US:.1f} us")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("lateness: when the code runs - intended expiry (us, log scale)")
    ax.set_ylabel("wake-ups per bin (log scale)")
    sysinfo = info["system"]
    ax.set_title(
        f"Wake-up lateness, interval {info['interval_ns'] / NS_PER_US:g} us, "
        f"{info['loops']} wake-ups each, clock {info['clock']}, {info['policy']}\n"
        f"{sysinfo['cpus']} CPUs {sysinfo['cpu_model']}, Linux {sysinfo['kernel']}, "
        f"{sysinfo['python']}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    try:
        fig.savefig(path)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The tool's options, on ``p``."""
    p.add_argument("-i", "--interval", type=_interval_arg, default=1_000_000, metavar="TIME",
                   help="wake-up period: microseconds, or with a unit (500us, 1ms); "
                        "default 1000 us")
    how_long = p.add_mutually_exclusive_group()
    how_long.add_argument("-l", "--loops", type=_positive_int, metavar="N",
                          help="wake-ups measured per mechanism")
    how_long.add_argument("-D", "--duration", type=_duration_arg, metavar="TIME",
                          help="total measuring time, shared equally by the mechanisms: "
                               "seconds, or with a unit (500ms, 2m); default 10 s")
    p.add_argument("-m", "--mode", action="append", type=_mode_arg, metavar="MODE",
                   help="what to measure: " + ", ".join(MODES) + " (repeat it or give a "
                        "comma-separated list; default all). The raw timerfd limit "
                        "always runs as the reference")
    p.add_argument("-c", "--clock", type=_clock_arg, default=ClockId.MONOTONIC,
                   help="clock of our timers and the raw loop: monotonic (default), realtime, "
                        "boottime, tai (the peers always use monotonic)")
    p.add_argument("--load", action="append", type=_load_arg, metavar="LOAD",
                   help="what runs while measuring: " + ", ".join(LOADS) + " (python: the "
                        "main thread busy in bytecode; thread: a worker thread busy; cpu: a "
                        "busy process per CPU). Repeat it or give a comma-separated list to "
                        "measure under each in turn, side by side; default none")
    p.add_argument("-p", "--priority", type=_priority_arg, default=0, metavar="PRIO",
                   help="run at SCHED_FIFO PRIO (1-99) when permitted; 0 (default): normal")
    p.add_argument("--rounds", type=_positive_int, default=1, metavar="N",
                   help="split each mechanism's wake-ups into N rounds taken in turn "
                        "(A, B, ..., A, B, ...), so that a change in machine load hits all "
                        "mechanisms alike; default 1")
    p.add_argument("--warmup", type=_nonneg_int, default=10, metavar="N",
                   help="wake-ups run first and not counted, per mechanism (default 10)")
    p.add_argument("--histogram", metavar="FILE",
                   help="write the latency histograms in cyclictest's format to FILE")
    p.add_argument("--histogram-max", type=_positive_int, metavar="US",
                   help="histogram buckets (1 us each); default max(1000, 2 x interval)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw all mechanisms' histograms on one figure (needs matplotlib: "
                        "pip install hrtimer_cffi[plot])")
    p.add_argument("--json", action="store_true",
                   help="print the results as JSON instead of the table")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _mode_arg(text: str) -> list[str]:
    modes = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise argparse.ArgumentTypeError(
            f"unknown mode {', '.join(bad) or repr(text)}; choose from {', '.join(MODES)}"
        )
    return modes


def _load_arg(text: str) -> list[str]:
    loads = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in loads if m not in LOADS]
    if bad or not loads:
        raise argparse.ArgumentTypeError(
            f"unknown load {', '.join(bad) or repr(text)}; choose from {', '.join(LOADS)}"
        )
    return loads


def _check_output(p: argparse.ArgumentParser, option: str, path: str | None) -> None:
    if path is None:
        return
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        p.error(f"{option} {path}: directory {d} does not exist")
    if not os.access(d, os.W_OK):
        p.error(f"{option} {path}: directory {d} is not writable")
    if os.path.isdir(path):
        p.error(f"{option} {path}: is a directory")


def finish_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Defaults and checks that argparse cannot express; ``p.error`` (exit
    status 2) on a bad combination."""
    args.mode = sorted({m for group in (args.mode or [["all"]]) for m in group},
                       key=MODES.index)
    args.load = list(dict.fromkeys(m for group in (args.load or [["none"]]) for m in group))
    if args.loops is None and args.duration is None:
        args.duration = 10 * NS_PER_S
    if args.histogram_max is None:
        args.histogram_max = default_histogram_max(args.interval)
    _check_output(p, "--histogram", args.histogram)
    _check_output(p, "--plot", args.plot)
    if args.plot:
        try:
            _import_pyplot()
        except ImportError as e:
            p.exit(2, f"{p.prog}: error: --plot needs matplotlib ({e}); install it with: "
                      "pip install hrtimer_cffi[plot]\n")
    return args


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The ``hrtimer-latency`` argument parser."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Measure periodic wake-up latency (cyclictest-style) of hrtimer_cffi's "
                    "mechanisms and of the standard library's, against a raw timerfd loop.",
        epilog="Example: %(prog)s --interval 1ms --duration 10 --histogram hist.txt",
    )
    add_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hrtimer-latency``; returns the exit status."""
    p = build_parser()
    args = finish_args(p, p.parse_args(argv))
    try:
        return run(args)
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{PROG}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
