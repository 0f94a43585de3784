"""Dispatch rate when many timers are due at once: Python callbacks per
second, against asyncio.

N timers are armed at one absolute expiry 200 ms ahead; each callback counts
itself and the last one notes the time. Rate = N / (time of the last
callback - the expiry). Ours: ``HasTimer`` objects on the HARD context (the
expiry thread runs them, one GIL acquisition per batch) and on the SOFT one;
asyncio: N ``loop.call_at`` handles with the same ``when``, the loop run
until the last one. Best of 3.

Run: .venv/bin/python benchmarks/bench_dispatch.py [--quick]
"""

from __future__ import annotations

import asyncio
import threading

import _common

import hrtimer_cffi as hrt

AHEAD_NS = 200_000_000


class Counter:
    """Shared by all callbacks of one round."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.last = 0
        self.done = threading.Event()


class Due(hrt.HasTimer):
    timer = hrt.TimerField(mode=hrt.TimerMode.ABS | hrt.TimerMode.HARD)

    def __init__(self, counter: Counter, mode: hrt.TimerMode) -> None:
        hrt.TimerField.install(self, hrt.Timer(mode), replace=True)
        self.counter = counter

    def run(self, ctx: hrt.CallbackContext) -> None:
        c = self.counter
        c.count += 1
        if c.count == c.n:
            c.last = hrt.now()
            c.done.set()


def ours_once(n: int, context: hrt.TimerMode) -> float:
    counter = Counter(n)
    objs = [Due(counter, hrt.TimerMode.ABS | context) for _ in range(n)]
    when = hrt.now() + AHEAD_NS
    handles = [o.start(when) for o in objs]
    if not counter.done.wait(60):
        raise RuntimeError(f"only {counter.count} of {n} callbacks ran in 60 s")
    del handles
    return n / ((counter.last - when) / 1e9)


def asyncio_once(n: int) -> float:
    loop = asyncio.new_event_loop()
    try:
        counter = Counter(n)

        def cb() -> None:
            counter.count += 1
            if counter.count == counter.n:
                counter.last = hrt.now()
                loop.stop()

        when = hrt.now() + AHEAD_NS  # loop.time() is CLOCK_MONOTONIC as hrt.now()
        for _ in range(n):
            loop.call_at(when / 1e9, cb)
        loop.run_forever()
        return n / ((counter.last - when) / 1e9)
    finally:
        loop.close()


def best(fn: object, *a: object) -> float:
    rates = []
    for _ in range(3):
        with _common.no_gc():
            rates.append(fn(*a))  # type: ignore[operator]
    return max(rates)


def main() -> None:
    args = _common.parser(__doc__.splitlines()[0]).parse_args()
    rep = _common.Report("dispatch of due callbacks", args)
    for n in ((10_000, 100_000) if not args.quick else (10_000, 50_000)):
        peer = best(asyncio_once, n)
        hard = best(ours_once, n, hrt.TimerMode.HARD)
        soft = best(ours_once, n, hrt.TimerMode.SOFT)
        rep.compare(f"{n:,} due at once, HARD", hard, peer, "callbacks/s", "ours HARD",
                    "asyncio", n=n, context="HARD")
        rep.compare(f"{n:,} due at once, SOFT", soft, peer, "callbacks/s", "ours SOFT",
                    "asyncio", n=n, context="SOFT")
    rep.finish()


if __name__ == "__main__":
    main()
