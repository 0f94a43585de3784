"""The command line and the run: arguments, progress, measuring every
mechanism under each load, and the outputs."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from .. import _binding as _b
from .._units import ClockId
from .load import LOADS, background_load, spin
from .mechanisms import MODES, select
from .peers import peer_clock_offset
from .plan import NS_PER_S, PROG, PROGRESS_MIN_S, Plan
from .report import (
    _import_pyplot,
    default_histogram_max,
    policy,
    print_comparison,
    print_report,
    system_info,
    timer_slack_ns,
    to_json,
    write_histogram,
    write_plot,
)
from .statistics import Result, summarize

__all__ = ["add_arguments", "build_parser", "finish_args", "main", "parse_time", "run"]

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

    peer_offset, peer_clock_note = peer_clock_offset()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

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
            budget = (None if args.loops is not None
                      else 2 * (share + args.warmup) * interval / NS_PER_S + 0.5)
            plan = Plan(clock, interval, share, args.warmup, report, peer_offset, budget)
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
        "command": list(sys.argv),
        "started": started,
        "ended": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "interval_ns": interval,
        "loops": loops,
        "warmup": args.warmup,
        "rounds": rounds,
        "clock": clock.name,
        "modes": list(args.mode),
        "policy": policy(),
        "priority_requested": args.priority,
        "priority_note": prio_note,
        "load": load,
        "gil_handover": _b.gil_handover(),
        "timer_slack_ns": timer_slack_ns(),
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
        spin(done)
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


def _choices(text: str, allowed: Sequence[str], what: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``, each one of ``allowed``; else an
    ``argparse.ArgumentTypeError`` naming the bad ones and the choices."""
    picked = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in picked if m not in allowed]
    if bad or not picked:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(bad) or repr(text)}; choose from {', '.join(allowed)}"
        )
    return picked


def _mode_arg(text: str) -> list[str]:
    return _choices(text, MODES, "mode")


def _load_arg(text: str) -> list[str]:
    return _choices(text, list(LOADS), "load")


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
