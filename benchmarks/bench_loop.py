"""The precise event loop (``hrt.aio.EventLoop``) against asyncio's stock
selector loop, in the same run: timer lateness, timer throughput, and a
loopback echo server.

* ``asyncio.sleep`` lateness: a task sleeps to the points of a 1 ms grid
  (``asyncio.sleep(deadline - time.monotonic())``) and records
  ``time.monotonic() - deadline`` on waking; points already passed are
  skipped. Never early means min >= 0 (``loop.time()`` is
  ``time.monotonic()``, so the sleep's own deadline is >= the grid point).
  The raw C timerfd loop (the machine's limit) runs interleaved with the
  loops, in rounds.
* ``call_later`` + ``cancel``: in a running loop, batches of 1,000 timers
  0.1-10 s ahead, each cancelled, one loop iteration per batch.
* due callbacks: 50,000 ``call_at`` callbacks at distinct deadlines all
  already passed, run by the loop (dispatch rate).
* dense timers (information, no target): 20,000 timers at random deadlines
  over one second; CPU time per callback. The stock loop wakes about once a
  millisecond and runs every timer due by then; this loop wakes for each
  distinct deadline, so it spends more CPU when deadlines are this dense.
* echo: 8 loopback TCP connections (127.0.0.1) ping-ponging 64 bytes through
  a Protocol echo server on the same loop; requests/s.

With uvloop installed, it runs as a third loop (information, no target).
Throughputs are the best of several runs, alternating the loops. Each line
prints ours, stock, and their ratio (targets: lateness p50 <= 1.5x raw and
min >= 0; throughputs >= 1x; echo >= 0.95x).

Run: .venv/bin/python benchmarks/bench_loop.py [--quick] [--json FILE]
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import _common

import hrtimer_cffi as hrt
from hrtimer_cffi import _binding

try:
    import uvloop
except ImportError:  # optional peer
    uvloop = None

GRID = 0.001  # s
LoopFactory = Callable[[], asyncio.AbstractEventLoop]
LOOPS: dict[str, LoopFactory] = {"hrt": hrt.aio.new_event_loop, "stock": asyncio.new_event_loop}
if uvloop is not None:
    LOOPS["uvloop"] = uvloop.new_event_loop


def on(factory: LoopFactory, fn: Callable[[asyncio.AbstractEventLoop], Any]) -> Any:
    loop = factory()
    try:
        return fn(loop)
    finally:
        loop.close()


# ---------------------------------------------------------------- lateness


def sleep_lateness(loop: asyncio.AbstractEventLoop, n: int) -> list[float]:
    """Lateness (us) of ``n`` asyncio.sleep wake-ups on a 1 ms grid."""

    async def run() -> list[float]:
        out = []
        t = time.monotonic  # loop.time() on both asyncio loops; uvloop's is in whole ms
        d = t() + GRID
        for _ in range(n):
            await asyncio.sleep(d - t())
            now = t()
            out.append((now - d) * 1e6)
            d += GRID
            if d <= now:
                d += ((now - d) // GRID + 1) * GRID
        return out

    return loop.run_until_complete(run())


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


# ---------------------------------------------------------------- throughput


def call_later_cancel(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """call_later + cancel per second, 1,000 per loop iteration."""
    rnd = random.Random(1)
    delays = [rnd.uniform(0.1, 10.0) for _ in range(1000)]

    def noop() -> None:
        pass

    async def run() -> float:
        cl = loop.call_later
        t0 = time.perf_counter()
        for _ in range(n // 1000):
            for d in delays:
                cl(d, noop).cancel()
            await asyncio.sleep(0)
        return (n // 1000 * 1000) / (time.perf_counter() - t0)

    return float(loop.run_until_complete(run()))


def due_callbacks(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """Callbacks per second for ``n`` timers whose deadlines have passed."""
    done = loop.create_future()
    left = [n]

    def cb() -> None:
        left[0] -= 1
        if not left[0]:
            done.set_result(None)

    base = loop.time() - 1.0
    for i in range(n):
        loop.call_at(base + i * 1e-6, cb)
    t0 = time.perf_counter()
    loop.run_until_complete(done)
    return n / (time.perf_counter() - t0)


def dense_cpu(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """CPU us per callback for ``n`` timers spread at random over 1 s (so
    about ``n / 1000`` share each millisecond)."""
    done = loop.create_future()
    left = [n]

    def cb() -> None:
        left[0] -= 1
        if not left[0]:
            done.set_result(None)

    rnd = random.Random(2)
    base = loop.time() + 0.01
    for _ in range(n):
        loop.call_at(base + rnd.random(), cb)
    c0 = time.process_time()
    loop.run_until_complete(done)
    return (time.process_time() - c0) / n * 1e6


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: Any = transport

    def data_received(self, data: bytes) -> None:
        self.t.write(data)


class Client(asyncio.Protocol):
    MSG = b"x" * 64

    def __init__(self, counter: list[int], stop: list[bool]) -> None:
        self.counter, self.stop = counter, stop
        self.got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: Any = transport
        self.t.write(self.MSG)

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= len(self.MSG):
            self.got -= len(self.MSG)
            self.counter[0] += 1
            if not self.stop[0]:
                self.t.write(self.MSG)


def echo_rps(loop: asyncio.AbstractEventLoop, seconds: float, conns: int = 8) -> float:
    async def run() -> float:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        counter, stop = [0], [False]
        transports = []
        for _ in range(conns):
            tr, _ = await loop.create_connection(lambda: Client(counter, stop), "127.0.0.1", port)
            transports.append(tr)
        await asyncio.sleep(0.1)  # warm up
        c0, t0 = counter[0], time.perf_counter()
        await asyncio.sleep(seconds)
        rate = (counter[0] - c0) / (time.perf_counter() - t0)
        stop[0] = True
        for tr in transports:
            tr.close()
        server.close()
        await server.wait_closed()
        return rate

    return float(loop.run_until_complete(run()))


def best_of(runs: int, fn: Callable[[asyncio.AbstractEventLoop], float]) -> dict[str, float]:
    best = {name: 0.0 for name in LOOPS}
    for _ in range(runs):
        for name, factory in LOOPS.items():
            with _common.no_gc():
                best[name] = max(best[name], on(factory, fn))
    return best


# ---------------------------------------------------------------- main


def main() -> None:
    ap = _common.parser(__doc__.splitlines()[0])
    args = ap.parse_args()
    q = args.quick
    n_sleep, rounds = (2000, 4) if q else (10_000, 10)
    rep = _common.Report("bench_loop: hrt.aio.EventLoop vs asyncio's selector loop", args)

    lat: dict[str, list[float]] = {"raw": [], **{name: [] for name in LOOPS}}
    per = n_sleep // rounds
    for _ in range(rounds):
        lat["raw"] += [x / 1000 for x in _binding.raw_timerfd_loop(1, int(GRID * 1e9), per)]
        for name, factory in LOOPS.items():
            with _common.no_gc():
                lat[name] += on(factory, lambda lp: sleep_lateness(lp, per))
    raw50 = pct(lat["raw"], 0.5)
    for name in lat:
        xs = lat[name]
        rep.line(f"asyncio.sleep lateness, {name}" if name != "raw" else "raw C timerfd loop",
                 f"min {min(xs):7.1f}  p10 {pct(xs, 0.1):7.1f}  p50 {pct(xs, 0.5):7.1f}  "
                 f"p99 {pct(xs, 0.99):7.1f} us  n={len(xs)}  "
                 f"p50 vs raw {pct(xs, 0.5) / raw50:5.2f}x",
                 loop=name, min_us=min(xs), p50_us=pct(xs, 0.5), p99_us=pct(xs, 0.99),
                 n=len(xs), p50_vs_raw=pct(xs, 0.5) / raw50)
    h50, s50 = pct(lat["hrt"], 0.5), pct(lat["stock"], 0.5)
    rep.compare("asyncio.sleep lateness p50", h50, s50, "us", "hrt", "stock",
                higher_is_better=False)
    ok = min(lat["hrt"]) >= 0
    rep.line("never early (min >= 0 over all hrt sleeps)", "met" if ok else "MISSED",
             never_early=ok)
    if uvloop is None:
        rep.line("uvloop", "not installed: its figures are skipped")

    runs = 3 if q else 5
    n = 100_000 if q else 200_000
    r = best_of(runs, lambda lp: call_later_cancel(lp, n))
    rep.compare("call_later+cancel", r["hrt"], r["stock"], "/s", "hrt", "stock")
    uv(rep, r, "call_later+cancel", "/s")
    n = 20_000 if q else 50_000
    r = best_of(runs, lambda lp: due_callbacks(lp, n))
    rep.compare("due callbacks", r["hrt"], r["stock"], "/s", "hrt", "stock")
    uv(rep, r, "due callbacks", "/s")
    n = 20_000
    c = {name: on(factory, lambda lp: dense_cpu(lp, n)) for name, factory in LOOPS.items()}
    phase = f"dense timers ({n:,} over 1 s): CPU per callback"
    rep.compare(phase, c["hrt"], c["stock"], "us", "hrt", "stock", higher_is_better=False)
    uv(rep, c, phase, "us")
    r = best_of(3, lambda lp: echo_rps(lp, 0.5 if q else 1.0))
    rep.compare("echo server, 8 connections", r["hrt"], r["stock"], "req/s", "hrt", "stock")
    uv(rep, r, "echo server, 8 connections", "req/s")
    rep.finish()


def uv(rep: _common.Report, r: dict[str, float], phase: str, unit: str) -> None:
    """The uvloop figure of a phase, beside the stock loop's (when installed)."""
    if "uvloop" in r:
        rep.compare(f"{phase} (uvloop)", r["uvloop"], r["stock"], unit, "uvloop", "stock",
                    loop="uvloop")


if __name__ == "__main__":
    main()
