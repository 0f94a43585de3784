"""Sleep lateness: ``hrt.sleep_until`` against ``time.sleep`` and against the
machine's limit, a raw C timerfd loop (``_binding.raw_timerfd_loop``).

Each method wakes on a periodic grid of absolute MONOTONIC deadlines
(``--interval-us`` apart) and records how late each wake-up is (ns after the
deadline, measured right after waking); grid points already passed after a
late wake-up are skipped. ``time.sleep`` gets the remaining time to the same
deadline. The methods run interleaved in rounds so that a
load change on the machine hits all of them alike. One line per method:
p50 and p99 in us, and p50 against the raw loop's.

Run: .venv/bin/python benchmarks/bench_sleep.py [--quick] [--interval-us N]
"""

from __future__ import annotations

import time
from collections.abc import Callable

import _common

import hrtimer_cffi as hrt
from hrtimer_cffi import _binding

M = hrt.ClockId.MONOTONIC


def pct(xs: list[int], q: float) -> float:
    """The q-quantile (nearest rank) of xs, in us."""
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] / 1e3


def raw_loop(n: int, interval: int) -> list[int]:
    return _binding.raw_timerfd_loop(M, interval, n)


def next_on_grid(d: int, interval: int, now: int) -> int:
    """The first grid point after ``d`` that is still ahead of ``now``: after a
    late wake-up the points already passed are skipped (as the raw loop's
    timerfd merges them), so every sample is a real sleep."""
    d += interval
    if d <= now:
        d += ((now - d) // interval + 1) * interval
    return d


def hrt_sleep_until(n: int, interval: int) -> list[int]:
    out = []
    d = hrt.now() + interval
    for _ in range(n):
        out.append(hrt.sleep_until(d))
        d = next_on_grid(d, interval, hrt.now())
    return out


def time_sleep(n: int, interval: int) -> list[int]:
    out = []
    mono = time.monotonic_ns
    d = mono() + interval
    for _ in range(n):
        time.sleep(max(0, d - mono()) / 1e9)
        out.append(mono() - d)
        d = next_on_grid(d, interval, mono())
    return out


def run_rounds(
    methods: dict[str, Callable[[int, int], list[int]]], n: int, rounds: int, interval: int
) -> dict[str, list[int]]:
    res: dict[str, list[int]] = {name: [] for name in methods}
    per = max(1, n // rounds)
    for _ in range(rounds):
        for name, fn in methods.items():
            with _common.no_gc():
                res[name] += fn(per, interval)
    return res


def report(rep: _common.Report, res: dict[str, list[int]], raw: str,
           targets: dict[str, float]) -> None:
    base = pct(res[raw], 0.5)
    for name, xs in res.items():
        p50, p99 = pct(xs, 0.5), pct(xs, 0.99)
        text = f"p50 {p50:8.1f} us  p99 {p99:8.1f} us  n={len(xs)}"
        ratio = p50 / base if base > 0 else float("nan")
        if name != raw:
            text += f"  ratio p50 vs raw {ratio:5.2f}x"
            if name in targets:
                ok = "met" if ratio <= targets[name] else "MISSED"
                text += f" (target <= {targets[name]}x: {ok})"
        rep.line(name, text, p50_us=p50, p99_us=p99, n=len(xs), ratio_vs_raw=ratio)


def main() -> None:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument("--interval-us", type=int, default=1000, help="grid spacing (default 1000)")
    args = ap.parse_args()
    interval = args.interval_us * 1000
    n, rounds = (300, 3) if args.quick else (3000, 10)
    rep = _common.Report("bench_sleep: lateness of a wake-up on a periodic grid", args)
    methods = {
        "raw C timerfd loop": raw_loop,
        "hrt.sleep_until": hrt_sleep_until,
        "time.sleep": time_sleep,
    }
    res = run_rounds(methods, n, rounds, interval)
    report(rep, res, "raw C timerfd loop", {"hrt.sleep_until": 1.3})
    rep.line("time.sleep / hrt.sleep_until (p50)",
             f"{pct(res['time.sleep'], 0.5) / pct(res['hrt.sleep_until'], 0.5):.2f}x")
    rep.finish()


if __name__ == "__main__":
    main()
