"""start + cancel from Python with 0, 100k and 1M timers pending, against
asyncio's ``call_later`` + ``cancel`` (and ``sched`` at small sizes).

Pending timers expire at random times in [1 h, 1 h + 1 s); each measured
start uses a delay drawn from the same range, so it lands in the middle of
the queue. Phases, each best of 3, cyclic GC off while timed:

* ours, intrusive: one pre-made ``HasTimer`` object, ``h = obj.start(d)``
  then ``h.cancel()`` (re-arming an embedded timer, the kernel way);
* ours, ``hrt.call_later(d, fn)`` then ``h.cancel()`` (allocates per call,
  as asyncio does);
* asyncio: ``loop.call_later(d, fn)`` then ``h.cancel()`` on a loop that
  holds the same number of pending handles (cancelled handles stay in its
  heap until the loop runs, as in real use between two loop iterations);
* sched (0 and 1k pending only: its cancel is O(n)).

With timers pending, a "timeout" line uses a fixed delay past every pending
timer instead (as a timeout is: the new timer goes last in the queue).

Run: .venv/bin/python benchmarks/bench_start_cancel.py [--quick]
"""

from __future__ import annotations

import asyncio
import random
import sched
import time
from collections.abc import Callable

import _common

import hrtimer_cffi as hrt

HOUR_NS = 3600 * 10**9


class Far(hrt.HasTimer):
    """A timer object whose callback never runs in this benchmark."""

    timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.HARD)

    def run(self, ctx: hrt.CallbackContext) -> None:
        return None


def _noop() -> None:
    return None


def _delays(n: int, seed: int) -> list[int]:
    """Random delays in [1 h, 1 h + 1 s); seed 0: all 1 h + 2 s (after every
    pending timer, as a fixed timeout is)."""
    if seed == 0:
        return [HOUR_NS + 2 * 10**9] * n
    rnd = random.Random(seed)
    return [HOUR_NS + rnd.randrange(10**9) for _ in range(n)]


def bench_ours(pending: int, n: int) -> dict[str, float]:
    """Pairs/s with ``pending`` timers armed: ``intrusive`` and ``call_later``
    at random positions, ``timeout`` (intrusive, after every pending one)."""
    keep = []
    for d in _delays(pending, 1):
        h = Far().start(d)
        h.detach()
        keep.append(h)
    obj = Far()

    def intrusive(delays: list[int]) -> Callable[[int], None]:
        def pairs(count: int) -> None:
            start = obj.start
            for d in delays[:count]:
                h = start(d)
                h.cancel()
        return pairs

    def calls(count: int) -> None:
        call_later = hrt.call_later
        for d in random_delays[:count]:
            h = call_later(d, _noop)
            h.cancel()

    random_delays = _delays(n, 2)
    try:
        out = {
            "intrusive": _common.best_rate(intrusive(random_delays), n),
            "call_later": _common.best_rate(calls, n),
        }
        if pending:
            out["timeout"] = _common.best_rate(intrusive(_delays(n, 0)), n)
        return out
    finally:
        for h in keep:
            h.cancel()


def bench_asyncio(pending: int, n: int) -> dict[str, float]:
    """Pairs/s of ``loop.call_later`` + ``cancel``: ``random`` and ``timeout``
    delays, as ``bench_ours``."""
    loop = asyncio.new_event_loop()
    try:
        keep = [loop.call_later(d / 1e9, _noop) for d in _delays(pending, 1)]

        def pairs(delays: list[float]) -> Callable[[int], None]:
            def run(count: int) -> None:
                call_later = loop.call_later
                for d in delays[:count]:
                    h = call_later(d, _noop)
                    h.cancel()
            return run

        out = {"random": _common.best_rate(pairs([d / 1e9 for d in _delays(n, 2)]), n)}
        if pending:
            out["timeout"] = _common.best_rate(pairs([d / 1e9 for d in _delays(n, 0)]), n)
        for h in keep:
            h.cancel()
        return out
    finally:
        loop.close()


def bench_sched(pending: int, n: int) -> float:
    s = sched.scheduler(time.monotonic, time.sleep)
    t0 = time.monotonic()
    for d in _delays(pending, 1):
        s.enterabs(t0 + d / 1e9, 0, _noop)
    delays = [t0 + d / 1e9 for d in _delays(n, 2)]

    def pairs(count: int) -> None:
        for d in delays[:count]:
            ev = s.enterabs(d, 0, _noop)
            s.cancel(ev)

    return _common.best_rate(pairs, n)


def main() -> None:
    args = _common.parser(__doc__.splitlines()[0]).parse_args()
    rep = _common.Report("start+cancel from Python", args)
    n = 50_000 if args.quick else 200_000
    for pending in (0, 1_000, 100_000, 1_000_000):
        ours = bench_ours(pending, n)
        peer = bench_asyncio(pending, n)
        rep.compare(f"start+cancel @{pending:,} pending", ours["intrusive"], peer["random"],
                    "pairs/s", "HasTimer.start", "asyncio", pending=pending, kind="intrusive")
        if pending:
            rep.compare(f"start+cancel @{pending:,} pending, timeout", ours["timeout"],
                        peer["timeout"], "pairs/s", "HasTimer.start", "asyncio",
                        pending=pending, kind="timeout")
        rep.compare(f"call_later+cancel @{pending:,} pending", ours["call_later"],
                    peer["random"], "pairs/s", "hrt.call_later", "asyncio", pending=pending,
                    kind="call_later")
        if pending <= 1_000:
            sc = bench_sched(pending, n // 10)
            rep.compare(f"start+cancel @{pending:,} pending vs sched", ours["intrusive"], sc,
                        "pairs/s", "HasTimer.start", "sched", pending=pending, kind="sched")
    rep.finish()


if __name__ == "__main__":
    main()
