"""Shared helpers of the benchmark scripts: options, timing, one printed line
per phase (ours, the peer, their ratio) and an optional JSON record."""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    return p


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


@contextmanager
def no_gc() -> Iterator[None]:
    """Timed sections run with the cyclic GC off, as timeit does."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def best_rate(fn: Callable[[int], None], n: int, repeat: int = 3) -> float:
    """Best of ``repeat`` runs of ``fn(n)`` (n operations), in operations/s."""
    best = float("inf")
    for _ in range(repeat):
        with no_gc():
            t0 = time.perf_counter()
            fn(n)
            dt = time.perf_counter() - t0
        best = min(best, dt)
    return n / best


class Report:
    """Prints one line per phase and collects them for --json."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.name = name
        self.args = args
        self.rows: list[dict[str, Any]] = []
        m = machine()
        print(f"== {name}: {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}, {m['python']}"
              + (" (quick)" if args.quick else ""), flush=True)

    def compare(self, phase: str, ours: float, peer: float | None, unit: str,
                ours_name: str = "ours", peer_name: str = "peer",
                higher_is_better: bool = True, **extra: Any) -> None:
        """One line: ours, the peer and ours/peer (> 1 means ours is higher)."""
        ratio = None if not peer else ours / peer
        rate = unit.endswith("/s")
        text = f"{phase:<44} {ours_name} {_fmt(ours, rate)} {unit}"
        if peer is not None:
            text += f" | {peer_name} {_fmt(peer, rate)} {unit} | ratio {ratio:.2f}x"
        print(text, flush=True)
        self.rows.append({"phase": phase, "ours_name": ours_name, "ours": ours,
                          "peer_name": peer_name, "peer": peer, "unit": unit,
                          "ratio": ratio, "higher_is_better": higher_is_better, **extra})

    def line(self, phase: str, text: str, **extra: Any) -> None:
        print(f"{phase:<44} {text}", flush=True)
        self.rows.append({"phase": phase, "text": text, **extra})

    def finish(self) -> None:
        if self.args.json:
            with open(self.args.json, "w") as f:
                json.dump({"bench": self.name, "quick": self.args.quick, "machine": machine(),
                           "rows": self.rows}, f, indent=2)


def _fmt(x: float, rate: bool) -> str:
    if not rate:
        return f"{x:.1f}"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e4:
        return f"{x / 1e3:.1f} k"
    return f"{x:.3g}"
