"""Bytes per armed timer: ours against an asyncio ``TimerHandle``.

Each variant arms N timers (default 100k) one hour ahead in a fresh
interpreter, twice: once under ``tracemalloc`` (Python-heap bytes: objects,
dicts, cffi wrappers and handles) and once without it, reading the resident
set size before and after (everything, including the C ``struct hrt_timer``
from malloc, which tracemalloc does not see). Per timer = delta / N.

Variants:

* ``HasTimer (handle kept)``: a minimal ``HasTimer`` subclass per timer,
  ``start()``-ed, the handle kept by the caller;
* ``HasTimer (detached)``: the same with the handle detached and dropped
  (the core alone keeps the object alive while it is armed);
* ``hrt.call_later``: plain callables, handles dropped (they come detached);
* ``asyncio call_later``: ``loop.call_later`` handles, dropped (the loop's
  heap keeps them).

Run: .venv/bin/python benchmarks/bench_memory.py [--quick] [--n N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import _common

VARIANTS = ("hastimer-kept", "hastimer-detached", "hrt-call-later", "asyncio-call-later")
NAMES = {
    "hastimer-kept": "HasTimer (handle kept)",
    "hastimer-detached": "HasTimer (detached)",
    "hrt-call-later": "hrt.call_later",
    "asyncio-call-later": "asyncio call_later",
}

HOUR_NS = 3600 * 10**9


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _noop() -> None:
    return None


def child(variant: str, n: int, traced: bool) -> dict[str, int]:
    """Arm n timers of ``variant`` in this process; returns bytes measured."""
    import asyncio
    import gc
    import tracemalloc

    import hrtimer_cffi as hrt

    class Minimal(hrt.HasTimer):
        timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.HARD)

        def run(self, ctx: hrt.CallbackContext) -> None:
            return None

    loop = asyncio.new_event_loop()
    # warm up every path once so first-use allocations are not counted
    Minimal().start(HOUR_NS).cancel()
    hrt.call_later(HOUR_NS, _noop).cancel()
    loop.call_later(3600.0, _noop).cancel()
    keep: list[object] = []
    gc.collect()
    gc.disable()
    if traced:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = _rss()
    for _ in range(n):
        if variant == "hastimer-kept":
            keep.append(Minimal().start(HOUR_NS))
        elif variant == "hastimer-detached":
            Minimal().start(HOUR_NS).detach()
        elif variant == "hrt-call-later":
            hrt.call_later(HOUR_NS, _noop)
        else:
            loop.call_later(3600.0, _noop)
    if variant == "hastimer-kept":
        # the list holding the handles is the caller's, not the timers'
        keep_list_bytes = sys.getsizeof(keep)
    else:
        keep_list_bytes = 0
    if traced:
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    else:
        after = _rss()
    armed = hrt.expiry_stats(hard=True)  # touch the core: it still works
    del armed
    return {"bytes": after - before - keep_list_bytes}


def run_variant(variant: str, n: int, traced: bool) -> int:
    out = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--n", str(n)]
        + (["--traced"] if traced else []),
        check=True, capture_output=True, text=True,
    )
    return int(json.loads(out.stdout)["bytes"])


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="timers armed per variant")
    p.add_argument("--child", choices=VARIANTS, help=argparse_hidden())
    p.add_argument("--traced", action="store_true", help=argparse_hidden())
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n, args.traced)))
        return
    n = min(args.n, 20_000) if args.quick else args.n
    rep = _common.Report(f"memory per armed timer ({n:,} armed)", args)
    results = {v: (run_variant(v, n, True) / n, run_variant(v, n, False) / n)
               for v in VARIANTS}
    peer_py, peer_rss = results["asyncio-call-later"]
    for v in VARIANTS[:-1]:
        py, rss = results[v]
        rep.compare(f"{NAMES[v]}: Python heap (tracemalloc)", py, peer_py, "B/timer",
                    NAMES[v], "asyncio TimerHandle", higher_is_better=False, variant=v,
                    measure="tracemalloc")
        rep.compare(f"{NAMES[v]}: RSS delta (Python + C)", rss, peer_rss, "B/timer",
                    NAMES[v], "asyncio TimerHandle", higher_is_better=False, variant=v,
                    measure="rss")
    rep.finish()


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
