"""Lateness of a callback on the event loop's thread, scheduled 1 ms ahead,
one after another: ``hrt.aio.call_at`` against ``loop.call_at`` and plain
``hrt.call_at`` handing over with ``loop.call_soon_threadsafe``, on asyncio's
stock selector loop and on ``hrt.aio.EventLoop``. Prints a markdown table of
``hrt.now() - deadline`` in the callback (µs).

Run: ``.venv/bin/python benchmarks/bench_aio_calls.py [N]`` (N calls per row,
default 1000).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import hrtimer_cffi as hrt

KINDS = ("hrt.aio.call_at", "loop.call_at", "hrt.call_at + call_soon_threadsafe")


async def measure(kind: str, n: int) -> list[int]:
    loop = asyncio.get_running_loop()
    lates: list[int] = []
    for _ in range(n):
        fut: asyncio.Future[None] = loop.create_future()
        d = hrt.now() + hrt.ms(1)

        def fn(d: int = d, fut: asyncio.Future[None] = fut) -> None:
            lates.append(hrt.now() - d)
            fut.set_result(None)

        if kind == KINDS[0]:
            hrt.aio.call_at(d, fn)
        elif kind == KINDS[1]:
            loop.call_at(d / 1e9, fn)
        else:
            hrt.call_at(d, loop.call_soon_threadsafe, fn)
        await fut
    return sorted(lates)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "stock": asyncio.SelectorEventLoop, "hrt.aio.EventLoop": hrt.aio.new_event_loop,
    }
    print("| loop | how | min | p50 | p99 |")
    print("| --- | --- | --- | --- | --- |")
    for name, make in loops.items():
        for kind in KINDS:
            loop = make()
            try:
                lates = loop.run_until_complete(measure(kind, n))
            finally:
                loop.close()

            def q(p: float, lates: list[int] = lates) -> float:
                return lates[min(len(lates) - 1, int(p * len(lates)))] / 1e3

            print(f"| {name} | `{kind}` | {lates[0] / 1e3:.1f} | {q(0.5):.1f} | {q(0.99):.1f} |")


if __name__ == "__main__":
    main()
