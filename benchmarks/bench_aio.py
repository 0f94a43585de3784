"""asyncio wake-up lateness: ``hrt.aio.sleep_until`` and ``hrt.aio.periodic``
against ``asyncio.sleep``, and against the machine's limit (the raw C
timerfd loop, ``_binding.raw_timerfd_loop``), in the same run.

Each method wakes a task on a periodic grid of absolute MONOTONIC deadlines
(``--interval-us`` apart) and records how late the task resumes (ns after
the deadline, read in the task); grid points already passed are skipped
(``periodic`` does so itself). ``asyncio.sleep`` gets the remaining time to
the same deadline. Methods run interleaved in rounds. With uvloop
installed, the aio and asyncio measures are repeated on it. One line per
measure: p50 and p99 in us, and p50 against the raw loop's.

Run: .venv/bin/python benchmarks/bench_aio.py [--quick] [--interval-us N]
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import _common
from bench_sleep import next_on_grid, raw_loop, report

import hrtimer_cffi as hrt

try:
    import uvloop
except ImportError:  # optional peer
    uvloop = None


async def aio_sleep_until(n: int, interval: int) -> list[int]:
    out = []
    d = hrt.now() + interval
    for _ in range(n):
        out.append(await hrt.aio.sleep_until(d))
        d = next_on_grid(d, interval, hrt.now())
    return out


async def aio_periodic(n: int, interval: int) -> list[int]:
    out = []
    p = hrt.aio.periodic(interval)
    for _ in range(n):
        d = p.next_deadline  # the deadline of the tick about to be taken
        await p.__anext__()
        out.append(hrt.now() - d)
    return out


async def asyncio_sleep(n: int, interval: int) -> list[int]:
    out = []
    mono = time.monotonic_ns
    d = mono() + interval
    for _ in range(n):
        await asyncio.sleep(max(0, d - mono()) / 1e9)
        out.append(mono() - d)
        d = next_on_grid(d, interval, mono())
    return out


def on(new_loop: Callable[[], asyncio.AbstractEventLoop],
       coro: Callable[[int, int], Any]) -> Callable[[int, int], list[int]]:
    def run(n: int, interval: int) -> list[int]:
        loop = new_loop()
        try:
            result: list[int] = loop.run_until_complete(coro(n, interval))
            return result
        finally:
            loop.close()

    return run


def main() -> None:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument("--interval-us", type=int, default=1000, help="grid spacing (default 1000)")
    args = ap.parse_args()
    interval = args.interval_us * 1000
    n, rounds = (300, 3) if args.quick else (2000, 10)
    rep = _common.Report("bench_aio: lateness of a task's wake-up on a periodic grid", args)
    methods: dict[str, Callable[[int, int], list[int]]] = {
        "raw C timerfd loop": raw_loop,
        "hrt.aio.sleep_until": on(asyncio.new_event_loop, aio_sleep_until),
        "hrt.aio.periodic": on(asyncio.new_event_loop, aio_periodic),
        "asyncio.sleep": on(asyncio.new_event_loop, asyncio_sleep),
    }
    if uvloop is not None:
        methods["hrt.aio.sleep_until (uvloop)"] = on(uvloop.new_event_loop, aio_sleep_until)
        methods["asyncio.sleep (uvloop)"] = on(uvloop.new_event_loop, asyncio_sleep)
    else:
        rep.line("uvloop", "not installed: its measures are skipped")
    res: dict[str, list[int]] = {name: [] for name in methods}
    per = max(1, n // rounds)
    for _ in range(rounds):
        for name, fn in methods.items():
            with _common.no_gc():
                res[name] += fn(per, interval)
    report(rep, res, "raw C timerfd loop",
           {k: 2.0 for k in res if k.startswith("hrt.aio")})
    a, b = _pct50(res["asyncio.sleep"]), _pct50(res["hrt.aio.sleep_until"])
    rep.line("asyncio.sleep / hrt.aio.sleep_until (p50)", f"{a / b:.2f}x")
    rep.finish()


def _pct50(xs: list[int]) -> float:
    s = sorted(xs)
    return float(s[len(s) // 2])


if __name__ == "__main__":
    main()
