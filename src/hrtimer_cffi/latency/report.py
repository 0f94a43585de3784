"""The report: machine facts, the table, the side-by-side view, JSON,
cyclictest's histogram format and the plot."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from typing import Any, TextIO

from .. import __version__
from .load import LOADS
from .plan import NS_PER_US, PROG
from .statistics import Result

__all__ = [
    "default_histogram_max",
    "policy",
    "print_comparison",
    "print_report",
    "system_info",
    "timer_slack_ns",
    "to_json",
    "write_histogram",
    "write_plot",
]


def timer_slack_ns() -> int | None:
    try:
        with open("/proc/self/timerslack_ns") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def policy() -> str:
    policy = os.sched_getscheduler(0)
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO",
             os.SCHED_RR: "SCHED_RR", os.SCHED_BATCH: "SCHED_BATCH",
             os.SCHED_IDLE: "SCHED_IDLE"}
    name = names.get(policy, str(policy))
    if policy in (os.SCHED_FIFO, os.SCHED_RR):
        return f"{name} priority {os.sched_getparam(0).sched_priority}"
    return f"{name} (normal priority)"


def system_info() -> dict[str, Any]:
    """The machine facts the report prints."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "loadavg": _loadavg(),
    }



def _raw(results: Sequence[Result]) -> Result | None:
    for r in results:
        if r.mechanism.kind == "limit" and r.available:
            return r
    return None


def _ratio(r: Result, raw: Result | None, key: str) -> float | None:
    if raw is None or not r.available or raw.stats[key] <= 0:
        return None
    return r.stats[key] / raw.stats[key]


#: A p99.9 from fewer samples is one of the few largest: not printed.
MIN_SAMPLES_P99_9 = 1000


def shown(r: Result, stat: str) -> bool:
    """Is ``stat`` of ``r`` meaningful enough to print?"""
    return stat != "p99_9" or len(r.samples) >= MIN_SAMPLES_P99_9


def print_report(info: dict[str, Any], results: Sequence[Result], out: TextIO) -> None:
    """The header and one row per mechanism."""
    sysinfo = info["system"]
    slack = info["timer_slack_ns"]
    slack_text = "unknown" if slack is None else f"{slack} ns"
    iv_us = info["interval_ns"] / NS_PER_US
    w = out.write
    rounds = info["rounds"]
    w(f"{PROG}: interval {iv_us:g} us, {info['loops']} wake-ups per mechanism "
      + (f"in {rounds} interleaved rounds " if rounds > 1 else "")
      + f"(+{info['warmup']} warm-up{' per round' if rounds > 1 else ''}, not counted), "
      f"clock {info['clock']}\n")
    w(f"policy: {info['policy']}; timer slack: {slack_text} (main thread; the core's expiry "
      f"threads, sleep_until and the raw loop use 1 ns); loadavg: {sysinfo['loadavg']}\n")
    w(f"machine: {sysinfo['cpus']} CPUs, {sysinfo['cpu_model']}, Linux {sysinfo['kernel']}, "
      f"{sysinfo['python']}\n")
    w(f"load: {LOADS[info['load']]}; GIL handover: {info['gil_handover']}\n")
    w("lateness = when the code runs - intended absolute expiry, in us; "
      "p50/p99 x raw = over the raw timerfd loop, the floor of timerfd-driven wake-ups "
      "(a thread woken by clock_nanosleep can beat it)\n\n")
    cols = ("min", "avg", "p50", "p90", "p99", "p99_9", "max")
    head = ("mechanism", "wakeups", "overrun", "min", "avg", "p50", "p90", "p99", "p99.9",
            "max", "p50xraw", "p99xraw")
    w(f"{head[0]:<20} {head[1]:>7} {head[2]:>7} "
      + " ".join(f"{h:>8}" for h in head[3:10]) + f" {head[10]:>7} {head[11]:>7}\n")
    raw = _raw(results)
    for r in results:
        name = r.mechanism.name
        if not r.available:
            w(f"{name:<20} unavailable: {r.reason}\n")
            continue
        ovr = "-" if r.overruns is None else str(r.overruns)
        vals = " ".join(f"{r.stats[c] / NS_PER_US:8.1f}" if shown(r, c) else f"{'-':>8}"
                        for c in cols)
        ratios = []
        for key in ("p50", "p99"):
            x = _ratio(r, raw, key)
            ratios.append(f"{x:7.2f}" if x is not None else f"{'-':>7}")
        w(f"{name:<20} {len(r.samples):>7} {ovr:>7} {vals} {ratios[0]} {ratios[1]}\n")
    if any(r.available and not shown(r, "p99_9") for r in results):
        w(f"(p99.9 needs {MIN_SAMPLES_P99_9} wake-ups or more to mean anything: '-' below that)\n")
    notes = [(r.mechanism.name, r.note) for r in results if r.available and r.note]
    if notes:
        w("\n")
        for name, note in notes:
            w(f"note: {name}: {note}\n")
    w(f"note: peers run on CLOCK_MONOTONIC ({info['peer_clock']})\n")


def print_comparison(runs: Sequence[tuple[dict[str, Any], Sequence[Result]]],
                     out: TextIO) -> None:
    """p50 and p99 of each mechanism under each load, side by side (us)."""
    w = out.write
    loads = [info["load"] for info, _ in runs]
    w("side by side: p50 / p99 lateness in us under each load\n")
    w(f"{'mechanism':<20}" + "".join(f" {load:>19}" for load in loads) + "\n")
    for i, first in enumerate(runs[0][1]):
        cells = []
        for _, results in runs:
            r = results[i]
            cells.append(f"{r.stats['p50'] / NS_PER_US:9.1f} /{r.stats['p99'] / NS_PER_US:8.1f}"
                         if r.available else f"{'-':>19}")
        w(f"{first.mechanism.name:<20}" + "".join(f" {c:>19}" for c in cells) + "\n")


def to_json(info: dict[str, Any], results: Sequence[Result]) -> dict[str, Any]:
    """The report as a JSON-ready dict; times in us."""
    raw = _raw(results)
    rows = []
    for r in results:
        row: dict[str, Any] = {
            "key": r.mechanism.key,
            "name": r.mechanism.name,
            "kind": r.mechanism.kind,
            "available": r.available,
            "reason": r.reason,
        }
        if r.available:
            row.update({
                "wakeups": len(r.samples),
                "overruns": r.overruns,
                "complete": r.complete,
                "note": r.note,
                "seconds": round(r.seconds, 3),
            })
            for k, v in r.stats.items():
                row[f"{k}_us"] = round(v / NS_PER_US, 3) if shown(r, k) else None
            row["histogram_us"] = histogram(r.samples)
            for k in ("p50", "p99"):
                x = _ratio(r, raw, k)
                row[f"{k}_ratio_to_raw"] = None if x is None else round(x, 3)
        rows.append(row)
    return {"tool": PROG, "version": __version__, "config": info, "results": rows}


def histogram(samples: Sequence[int]) -> dict[str, int]:
    """Wake-ups per 1 us bucket of lateness (negative lateness in bucket 0),
    only the buckets that are not empty: {"0": n0, "1": n1, ...}."""
    counts: dict[int, int] = {}
    for v in samples:
        b = max(0, v) // NS_PER_US
        counts[b] = counts.get(b, 0) + 1
    return {str(b): counts[b] for b in sorted(counts)}


# ---------------------------------------------------------------- histogram, plot


def default_histogram_max(interval: int) -> int:
    """Histogram buckets (1 us each) when --histogram-max is not given."""
    return max(1000, 2 * interval // NS_PER_US)


def write_histogram(path: str, results: Sequence[Result], buckets: int | None) -> None:
    """cyclictest's histogram (``cyclictest -h N`` output): one ``%06d`` line
    per 1 us bucket with one column per mechanism, then the totals, min,
    average and max latencies (us), overflows and the cycle numbers that
    overflowed. A comment line first names the columns. Negative lateness
    (a wake-up before its expiry) counts in bucket 0."""
    rows = [r for r in results if r.available]
    if buckets is None:
        buckets = 1000
    hist = [[0] * buckets for _ in rows]
    over = [0] * len(rows)
    outliers: list[list[int]] = [[] for _ in rows]
    lines = ["# hrtimer-latency histogram: 1 us buckets; columns: "
             + ", ".join(f"{i + 1}={r.mechanism.key}" for i, r in enumerate(rows)) + "\n",
             "# Histogram\n"]
    for j, r in enumerate(rows):
        h = hist[j]
        for cycle, v in enumerate(r.samples):
            b = max(0, v) // NS_PER_US
            if b >= buckets:
                over[j] += 1
                if len(outliers[j]) < buckets:
                    outliers[j].append(cycle)
            else:
                h[b] += 1
    for i in range(buckets):
        lines.append(f"{i:06d} " + "\t".join(f"{hist[j][i]:06d}" for j in range(len(rows)))
                     + "\n")

    def row(label: str, values: Sequence[int], fmt: str) -> str:
        return f"# {label}:" + "".join(" " + format(v, fmt) for v in values) + "\n"

    lines.append(row("Total", [sum(h) for h in hist], "09d"))
    lines.append(row("Min Latencies", [max(0, min(r.samples)) // NS_PER_US for r in rows],
                     "05d"))
    lines.append(row("Avg Latencies",
                     [max(0, sum(r.samples) // len(r.samples)) // NS_PER_US for r in rows],
                     "05d"))
    lines.append(row("Max Latencies", [max(0, max(r.samples)) // NS_PER_US for r in rows],
                     "05d"))
    lines.append(row("Histogram Overflows", over, "05d"))
    lines.append("# Histogram Overflow at cycle number:\n")
    for j in range(len(rows)):
        text = "".join(f" {c:05d}" for c in outliers[j])
        if len(outliers[j]) < over[j]:
            text += f" # {over[j] - len(outliers[j]):05d} others"
        lines.append(f"# Thread {j}:{text}\n")
    lines.append("\n")
    with open(path, "w") as f:
        f.writelines(lines)


def _import_pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend; raises ImportError."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plot(path: str, info: dict[str, Any], results: Sequence[Result]) -> None:
    """A latency-percentile chart: for each mechanism the lateness (log
    scale) reached at each percentile from 0 to 99.99 (x as 1 - p on a log
    scale, so the tail spreads out) — curves apart where histograms would
    overlap."""
    plt = _import_pyplot()
    rows = [r for r in results if r.available]
    fig, ax = plt.subplots(figsize=(12, 7), dpi=110)
    styles = {"limit": ("-", 2.6), "ours": ("-", 1.6), "peer": ("--", 1.6)}
    colors = plt.get_cmap("tab10").colors
    for i, r in enumerate(rows):
        ls, lw = styles[r.mechanism.kind]
        s = sorted(max(0.1, v / NS_PER_US) for v in r.samples)
        n = len(s)
        # the k-th smallest of n is the (k+1)/(n+1) quantile: 1 - p = (n-k)/(n+1)
        xs = [(n - k) / (n + 1) for k in range(n)]
        color = "black" if r.mechanism.kind == "limit" else colors[i % len(colors)]
        ax.plot(xs, s, linestyle=ls, linewidth=lw, color=color,
                label=f"{r.mechanism.name}: p50 {r.stats['p50'] / NS_PER_US:.1f} us, "
                      f"p99 {r.stats['p99'] / NS_PER_US:.1f} us")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ticks = [1.0, 0.5, 0.1, 0.01, 0.001, 0.0001]
    ax.set_xticks(ticks)
    ax.set_xticklabels(["min", "p50", "p90", "p99", "p99.9", "p99.99"])
    ax.set_xlabel("percentile of wake-ups")
    ax.set_ylabel("lateness: when the code runs - intended expiry (us, log scale)")
    sysinfo = info["system"]
    ax.set_title(
        f"Wake-up lateness by percentile, interval {info['interval_ns'] / NS_PER_US:g} us, "
        f"{info['loops']} wake-ups each, clock {info['clock']}, load {info['load']}, "
        f"{info['policy']}\n"
        f"{sysinfo['cpus']} CPUs {sysinfo['cpu_model']}, Linux {sysinfo['kernel']}, "
        f"{sysinfo['python']}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    try:
        fig.savefig(path)
    finally:
        plt.close(fig)
