"""Run every benchmark, one after another, and print a summary against the
targets. ``make bench`` runs it; a full run takes about 4 minutes on a 2-core
VM (``--quick``: about 1 minute).

Steps: the latency tool (all mechanisms), start+cancel, dispatch, memory,
the 1 kHz periodic timer, the pytest-benchmark micro set, the C core
benchmark (compiled to build/bench_core when benchmarks/bench_core.c
exists), and bench_sleep.py / bench_aio.py / bench_loop.py when they exist.
Each step's JSON goes to build/bench/ (override with --out); nothing is
written elsewhere.

Run: .venv/bin/python benchmarks/run_all.py [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable


def _step_cmds(out: Path, quick: bool) -> list[tuple[str, list[str]]]:
    q = ["--quick"] if quick else []
    steps: list[tuple[str, list[str]]] = [
        ("latency", [PY, "-m", "hrtimer_cffi", "latency", "--duration", "5" if quick else "10",
                     "--rounds", "5", "--json", "-q"]),
    ]
    for name in ("start_cancel", "dispatch", "memory", "periodic"):
        steps.append((name, [PY, str(HERE / f"bench_{name}.py"), *q,
                             "--json", str(out / f"{name}.json")]))
    steps.append(("micro", [PY, "-m", "pytest", str(HERE / "test_bench_micro.py"), "-q",
                            "--benchmark-only", "-p", "no:cacheprovider", "--benchmark-warmup=on",
                            f"--benchmark-json={out / 'micro.json'}",
                            *(["--benchmark-max-time=0.2"] if quick else [])]))
    if (HERE / "bench_core.c").exists():
        steps.append(("core", [str(ROOT / "build" / "bench_core")]))
    for name in ("sleep", "aio", "loop"):
        script = HERE / f"bench_{name}.py"
        if script.exists():
            steps.append((name, [PY, str(script), *q, "--json", str(out / f"{name}.json")]))
    return steps


def _compile_core() -> str | None:
    """Build build/bench_core; returns an error text or None."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        return f"no C compiler ({cc})"
    (ROOT / "build").mkdir(exist_ok=True)
    srcs = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "csrc").glob("*.c"))
    cmd = [cc, "-O2", "-std=gnu11", "-pthread", "-Icsrc", "benchmarks/bench_core.c", *srcs,
           "-o", "build/bench_core"]
    print("$ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        return f"compile failed:\n{r.stderr}"
    return None


def _run(name: str, cmd: list[str], out: Path) -> tuple[int, str, float]:
    print(f"\n### {name}: {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    dt = time.monotonic() - t0
    text = r.stdout
    if name == "latency" and r.returncode == 0:
        (out / "latency.json").write_text(text)
        text = _latency_table(json.loads(text))
    sys.stdout.write(text)
    if r.returncode != 0:
        sys.stdout.write(r.stderr)
    print(f"### {name}: exit {r.returncode}, {dt:.1f} s", flush=True)
    return r.returncode, text, dt


def _latency_table(doc: dict[str, Any]) -> str:
    lines = [f"{'mechanism':<20} {'p50 us':>9} {'p99 us':>9} {'p99.9 us':>9} {'max us':>9} "
             f"{'p50xraw':>8} {'p99xraw':>8}"]
    for r in doc["results"]:
        if not r["available"]:
            lines.append(f"{r['name']:<20} unavailable: {r['reason']}")
            continue
        lines.append(f"{r['name']:<20} {r['p50_us']:9.1f} {r['p99_us']:9.1f} "
                     f"{r['p99_9_us']:9.1f} {r['max_us']:9.1f} "
                     f"{r['p50_ratio_to_raw']:8.2f} {r['p99_ratio_to_raw']:8.2f}")
    return "\n".join(lines) + "\n"


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _targets(out: Path, texts: dict[str, str]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each target the runs cover."""
    rows: list[tuple[str, str, bool | None]] = []

    def add(target: str, value: float | None, ok: bool | None, fmt: str) -> None:
        rows.append((target, "n/a" if value is None else fmt.format(value),
                     None if value is None else ok))

    lat = _load(out / "latency.json")
    if lat:
        by = {r["key"]: r for r in lat["results"] if r["available"]}

        def stat(key: str, field: str) -> float | None:
            r = by.get(key)
            return None if r is None else float(r[field])

        for key, field, limit in (("python-hard", "p50_ratio_to_raw", 1.3),
                                  ("python-hard", "p99_ratio_to_raw", 2.0),
                                  ("c-callback", "p50_ratio_to_raw", 1.1)):
            v = stat(key, field)
            add(f"{key} {field.split('_')[0]} <= {limit}x raw timerfd", v,
                v is not None and v <= limit, "{:.2f}x")
        hard = stat("python-hard", "p50_us")
        for key, limit in (("time-sleep", 0.5), ("threading-timer", 0.2), ("asyncio", 0.1)):
            peer = stat(key, "p50_us")
            v = None if hard is None or not peer else hard / peer
            add(f"python-hard p50 <= {limit}x {key} p50", v, v is not None and v <= limit,
                "{:.2f}x")
    sc = _load(out / "start_cancel.json")
    if sc:
        for r in sc["rows"]:
            kind, pending = r.get("kind"), r.get("pending")
            if kind in ("intrusive", "timeout") and pending in (0, 100_000, 1_000_000):
                what = "random" if kind == "intrusive" else "timeout"
                add(f"HasTimer start+cancel @{pending:,} ({what}) >= 2x asyncio", r["ratio"],
                    r["ratio"] >= 2, "{:.2f}x")
            if kind == "call_later" and pending == 0:
                add("hrt.call_later+cancel >= 1.5x asyncio", r["ratio"], r["ratio"] >= 1.5,
                    "{:.2f}x")
    dp = _load(out / "dispatch.json")
    if dp:
        for r in dp["rows"]:
            if r.get("context") == "HARD":
                add(f"dispatch {r['n']:,} due (HARD) >= 2x asyncio", r["ratio"],
                    r["ratio"] >= 2, "{:.2f}x")
    mem = _load(out / "memory.json")
    if mem:
        for r in mem["rows"]:
            if r.get("measure") == "rss" and r.get("variant") in ("hastimer-detached",
                                                                   "hrt-call-later"):
                add(f"bytes per armed timer ({r['variant']}) <= asyncio's", r["ours"],
                    r["ours"] <= r["peer"], "{:.0f} B (asyncio " + f"{r['peer']:.0f} B)")
    lp = _load(out / "loop.json")
    if lp:
        by_phase = {r["phase"]: r for r in lp["rows"]}
        hrt = next((r for r in lp["rows"] if r.get("loop") == "hrt"), None)
        if hrt:
            v = hrt["p50_vs_raw"]
            add("hrt loop asyncio.sleep p50 <= 1.5x raw timerfd", v, v <= 1.5, "{:.2f}x")
            v = hrt["min_us"]
            add("hrt loop asyncio.sleep never early (min >= 0)", v, v >= 0, "{:.1f} us")
        for phase, limit in (("call_later+cancel", 1.0), ("due callbacks", 1.0),
                             ("echo server, 8 connections", 0.95)):
            r = by_phase.get(phase)
            if r and r.get("ratio") is not None:
                add(f"hrt loop {phase} >= {limit}x stock", r["ratio"], r["ratio"] >= limit,
                    "{:.2f}x")
    for line in texts.get("core", "").splitlines():
        m = re.match(r"core start\+cancel @1M pending(.*): ([0-9.]+) M/s", line)
        if m:
            v = float(m.group(2)) * 1e6
            add(f"C core start+cancel @1M pending{m.group(1)} >= 5 M/s", v, v >= 5e6,
                "{:,.0f}/s")
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these steps")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench",
                   help="directory for the JSON results (default build/bench)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    failed = []
    texts: dict[str, str] = {}
    for name, cmd in _step_cmds(args.out, args.quick):
        if args.only and name not in args.only:
            continue
        if name == "core":
            err = _compile_core()
            if err:
                print(f"\n### core: skipped: {err}", flush=True)
                failed.append(name)
                continue
        rc, texts[name], _ = _run(name, cmd, args.out)
        if rc != 0:
            failed.append(name)
    print("\n### targets (same run)")
    for target, value, ok in _targets(args.out, texts):
        mark = {True: "met", False: "MISSED", None: "-"}[ok]
        print(f"{target:<50} {value:>28}  {mark}")
    print(f"\n### all done in {time.monotonic() - t0:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
