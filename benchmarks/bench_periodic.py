"""A 1 kHz periodic timer for 10 s (--quick: 2 s): lateness percentiles,
overruns and drift, ours against asyncio, with the raw timerfd loop as the
machine's limit.

Lateness of a tick = when its code runs - its place on the ideal grid
``first expiry + k * interval`` (k counts skipped ticks too). Drift = how
fast lateness grows: (median lateness of the last 10 % of ticks - that of
the first 10 %) / elapsed seconds, in us per second; a drift-free timer
stays near 0, one re-armed relative to its own late wake-up does not.

* ours HARD: a ``HasTimer`` that forwards by the interval and restarts;
* ours call_every: ``hrt.call_every(ms(1), fn)`` (SOFT context);
* asyncio call_at: ``loop.call_at`` on absolute deadlines (drift-free);
* asyncio call_later: the common idiom, ``loop.call_later(interval, tick)``
  at the start of each tick (drifts);
* raw timerfd: ``hrtimer_cffi.latency``'s C loop, the limit.

Run: .venv/bin/python benchmarks/bench_periodic.py [--quick]
"""

from __future__ import annotations

import asyncio
import statistics
import threading

import _common

import hrtimer_cffi as hrt
from hrtimer_cffi import latency

INTERVAL = hrt.ms(1)


class Ticks:
    """Run times of the ticks and their grid index."""

    def __init__(self, first: int) -> None:
        self.first = first
        self.late: list[int] = []
        self.overruns = 0

    def add(self, t: int, k: int) -> None:
        self.late.append(t - (self.first + k * INTERVAL))


class Periodic(hrt.HasTimer):
    timer = hrt.TimerField(mode=hrt.TimerMode.ABS | hrt.TimerMode.HARD)

    def __init__(self, ticks: Ticks, n: int) -> None:
        self.ticks = ticks
        self.n = n
        self.k = 0
        self.done = threading.Event()

    def run(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart:
        t = hrt.now()
        self.ticks.add(t, self.k)
        if len(self.ticks.late) >= self.n:
            self.done.set()
            return hrt.TimerRestart.NO_RESTART
        skipped = ctx.forward(ctx.now, INTERVAL)
        self.ticks.overruns += skipped - 1
        self.k += skipped
        return hrt.TimerRestart.RESTART


def ours_hard(n: int) -> Ticks:
    first = hrt.now() + INTERVAL
    ticks = Ticks(first)
    p = Periodic(ticks, n)
    with p.start(first):
        if not p.done.wait(n * INTERVAL / 1e9 * 5 + 10):
            raise RuntimeError("periodic HARD timer stalled")
    return ticks


def ours_call_every(n: int) -> Ticks:
    done = threading.Event()
    ready = threading.Event()
    holder: list[hrt.ArcTimerHandle] = []
    ticks = Ticks(0)

    def tick() -> None:
        ready.wait()  # the first tick may come before call_every has returned
        target = holder[0].target
        ticks.add(hrt.now(), target.runs - 1 + target.overruns)
        if len(ticks.late) >= n:
            done.set()

    h = hrt.call_every(INTERVAL, tick)
    ticks.first = h.timer.expires  # read before the first tick: not forwarded yet
    holder.append(h)
    ready.set()
    try:
        if not done.wait(n * INTERVAL / 1e9 * 5 + 10):
            raise RuntimeError("call_every stalled")
    finally:
        h.cancel()
    ticks.overruns = h.target.overruns
    return ticks


def asyncio_call_at(n: int) -> Ticks:
    loop = asyncio.new_event_loop()
    first = hrt.now() + INTERVAL
    ticks = Ticks(first)
    k = 0

    def tick() -> None:
        nonlocal k
        t = hrt.now()
        ticks.add(t, k)
        if len(ticks.late) >= n:
            loop.stop()
            return
        k += 1
        while first + k * INTERVAL <= t:
            k += 1
            ticks.overruns += 1
        # loop.time() reads CLOCK_MONOTONIC, as hrt.now()
        loop.call_at((first + k * INTERVAL) / 1e9, tick)

    try:
        loop.call_at(first / 1e9, tick)
        loop.run_forever()
    finally:
        loop.close()
    return ticks


def asyncio_call_later(n: int) -> Ticks:
    loop = asyncio.new_event_loop()
    first = hrt.now() + INTERVAL
    ticks = Ticks(first)
    k = 0
    delay = INTERVAL / 1e9

    def tick() -> None:
        nonlocal k
        ticks.add(hrt.now(), k)
        k += 1
        if len(ticks.late) >= n:
            loop.stop()
            return
        loop.call_later(delay, tick)

    try:
        loop.call_at(first / 1e9, tick)
        loop.run_forever()
    finally:
        loop.close()
    return ticks


def raw(n: int) -> Ticks:
    mech = next(m for m in latency.MECHANISMS if m.key == "raw-timerfd")
    plan = latency.Plan(hrt.ClockId.MONOTONIC, INTERVAL, n, 0, lambda done: None)
    ticks = Ticks(0)
    ticks.late = mech.measure(plan).samples
    return ticks


def summary(t: Ticks, seconds: float) -> dict[str, float]:
    s = sorted(t.late)
    tenth = max(1, len(t.late) // 10)
    drift = (statistics.median(t.late[-tenth:]) - statistics.median(t.late[:tenth])) / seconds
    return {
        "p50": latency.percentile(s, 50) / 1e3,
        "p99": latency.percentile(s, 99) / 1e3,
        "p99_9": latency.percentile(s, 99.9) / 1e3,
        "max": s[-1] / 1e3,
        "overruns": float(t.overruns),
        "drift": drift / 1e3,
    }


def main() -> None:
    args = _common.parser(__doc__.splitlines()[0]).parse_args()
    seconds = 2.0 if args.quick else 10.0
    n = int(seconds * 1e9 / INTERVAL)
    rep = _common.Report(f"1 kHz periodic timer for {seconds:g} s", args)
    runs = {
        "raw timerfd": raw,
        "ours HARD": ours_hard,
        "ours call_every": ours_call_every,
        "asyncio call_at": asyncio_call_at,
        "asyncio call_later": asyncio_call_later,
    }
    res = {name: summary(fn(n), seconds) for name, fn in runs.items()}
    for name, r in res.items():
        rep.line(name, f"p50 {r['p50']:.1f} us, p99 {r['p99']:.1f} us, p99.9 {r['p99_9']:.1f} us, "
                       f"max {r['max']:.1f} us, overruns {r['overruns']:.0f}, "
                       f"drift {r['drift']:+.1f} us/s", mechanism=name, **r)
    lim = res["raw timerfd"]
    for ours in ("ours HARD", "ours call_every"):
        o = res[ours]
        rep.compare(f"{ours} p50 vs raw timerfd", o["p50"], lim["p50"], "us", ours,
                    "raw timerfd", higher_is_better=False)
        rep.compare(f"{ours} p99 vs raw timerfd", o["p99"], lim["p99"], "us", ours,
                    "raw timerfd", higher_is_better=False)
        peer = "asyncio call_at"
        rep.compare(f"{ours} p50 vs {peer}", o["p50"], res[peer]["p50"], "us", ours, peer,
                    higher_is_better=False)
    rep.line("drift (us/s)", ", ".join(f"{k} {v['drift']:+.1f}" for k, v in res.items()))
    rep.finish()


if __name__ == "__main__":
    main()
