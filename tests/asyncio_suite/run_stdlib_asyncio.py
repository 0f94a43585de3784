"""CPython's own asyncio test suite against hrtimer_cffi's precise event loop.

Runs modules of the interpreter's ``test.test_asyncio`` twice, each in its
own subprocess: with the stock loop, and with ``hrt.aio.EventLoop``
substituted everywhere a test makes a selector loop (``asyncio.SelectorEventLoop``,
``asyncio.EventLoop`` on 3.13, the default policy's loop factory, which
``asyncio.new_event_loop()``, ``asyncio.run()``, ``asyncio.Runner`` and
``IsolatedAsyncioTestCase`` use). Then it compares the outcome of every
test. A test that passes on the stock loop but not on ours is re-run alone
on both loops (``--rerun`` times) to tell a real difference from a flaky
test; only a difference that persists fails the run.

The tests of loops that are not ours (``TestLoop`` with its virtual clock,
mocks, ``BaseEventLoop`` subclasses) run identically in both runs.

Usage (from a venv where hrtimer_cffi is installed, any CPython 3.10-3.13):

    python tests/asyncio_suite/run_stdlib_asyncio.py            # default modules
    python tests/asyncio_suite/run_stdlib_asyncio.py --short    # 3 modules, ~15 s
    python tests/asyncio_suite/run_stdlib_asyncio.py -m test_events test_tasks
    python tests/asyncio_suite/run_stdlib_asyncio.py --json out.json

Exit status 0 when every test that passes on the stock loop passes on ours.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from typing import Any

# Modules with tests of selector loops, tasks, timeouts, I/O and processes.
# The proactor and Windows modules do not apply to Linux.
DEFAULT_MODULES = [
    "test_events", "test_tasks", "test_waitfor", "test_timeouts", "test_taskgroups",
    "test_runners", "test_base_events", "test_selector_events", "test_unix_events",
    "test_streams", "test_server", "test_sock_lowlevel", "test_sendfile",
    "test_subprocess", "test_locks", "test_queues", "test_futures", "test_futures2",
    "test_pep492", "test_context", "test_buffered_proto", "test_protocols",
    "test_threads", "test_eager_task_factory", "test_staggered", "test_sslproto",
    "test_ssl",
]
# The short form (~15 s): the epoll loop's event-loop tests, wait_for, timeouts.
SHORT_MODULES = ["test_events.EPollEventLoopTests", "test_waitfor", "test_timeouts"]
PASSING = ("pass", "xfail")
MODULE_TIMEOUT = 900


# ---------------------------------------------------------------- one run (child)


class Recorder(unittest.TextTestResult):
    """Keeps every test's outcome by id."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: dict[str, str] = {}
        self.details: dict[str, str] = {}

    def _set(self, test: unittest.TestCase, outcome: str, detail: str = "") -> None:
        tid = test.id()
        # subTest failures and errors mark the whole test
        if self.outcomes.get(tid) in ("fail", "error") and outcome == "pass":
            return
        self.outcomes[tid] = outcome
        if detail:
            self.details[tid] = detail[-3000:]

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._set(test, "pass")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._set(test, "fail", self.failures[-1][1])

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self._set(test, "error", self.errors[-1][1])

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self._set(test, "skip", reason)

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._set(test, "xfail")

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self._set(test, "xpass")

    def addSubTest(self, test: unittest.TestCase, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "fail" if issubclass(err[0], test.failureException) else "error"
            self._set(test, kind, self._exc_info_to_string(err, test))


def substitute() -> dict[str, int]:
    """Make every selector loop the tests create an ``hrt.aio.EventLoop``;
    returns a dict counting the loops made (key "loops")."""
    import asyncio
    import asyncio.unix_events as unix_events

    from hrtimer_cffi.aio import EventLoop

    made = {"loops": 0, "precise": 0}
    init = EventLoop.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made["loops"] += 1
        made["precise"] += self._hrt_tfd is not None

    EventLoop.__init__ = counting_init  # type: ignore[method-assign]
    for mod in (asyncio, unix_events):
        mod.SelectorEventLoop = EventLoop  # type: ignore[misc]
        if hasattr(mod, "EventLoop"):
            mod.EventLoop = EventLoop
    unix_events._UnixDefaultEventLoopPolicy._loop_factory = EventLoop  # type: ignore[attr-defined]
    return made


def run_child(module: str, loop: str, out: str, ids: list[str]) -> int:
    # A job started in the background by a shell inherits SIGINT ignored; the
    # tests that interrupt themselves (test_runners) need Python's handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    made = substitute() if loop == "hrt" else {"loops": 0, "precise": 0}
    mod, _, cls = module.partition(".")
    loader = unittest.TestLoader()
    if ids:
        suite = loader.loadTestsFromNames(ids)
    elif cls:
        suite = loader.loadTestsFromName(cls, importlib.import_module(f"test.test_asyncio.{mod}"))
    else:
        suite = loader.loadTestsFromModule(importlib.import_module(f"test.test_asyncio.{mod}"))
    with open(os.devnull, "w") as sink:
        runner = unittest.TextTestRunner(stream=sink, verbosity=0, resultclass=Recorder)
        t0 = time.monotonic()
        result = runner.run(suite)
        dt = time.monotonic() - t0
    assert isinstance(result, Recorder)
    Path(out).write_text(json.dumps({
        "module": module, "loop": loop, "seconds": dt, "made": made,
        "outcomes": result.outcomes, "details": result.details,
    }))
    return 0


# ---------------------------------------------------------------- driver


def available(module: str) -> bool:
    """``module`` (or ``module.TestClass``) exists in this Python's test_asyncio."""
    mod = module.partition(".")[0]
    return importlib.util.find_spec(f"test.test_asyncio.{mod}") is not None


def spawn(module: str, loop: str, ids: list[str] | None = None,
          timeout: float = MODULE_TIMEOUT) -> dict[str, Any]:
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    cmd = [sys.executable, "-X", "faulthandler", __file__, "--child", module, "--loop", loop,
           "--out", path, *(["--ids", *ids] if ids else [])]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        text = Path(path).read_text()
        if proc.returncode != 0 or not text:
            return {"module": module, "loop": loop, "crashed": True, "outcomes": {},
                    "stderr": proc.stderr[-4000:], "seconds": time.monotonic() - t0}
        res: dict[str, Any] = json.loads(text)
        return res
    except subprocess.TimeoutExpired:
        return {"module": module, "loop": loop, "crashed": True, "outcomes": {},
                "stderr": f"timed out after {timeout} s", "seconds": timeout}
    finally:
        os.unlink(path)


def count(outcomes: dict[str, str]) -> dict[str, int]:
    c: dict[str, int] = {}
    for o in outcomes.values():
        c[o] = c.get(o, 0) + 1
    return c


def rerun(module: str, tid: str, times: int) -> dict[str, list[str]]:
    """Outcomes of one test run alone ``times`` times on each loop."""
    got: dict[str, list[str]] = {"stock": [], "hrt": []}
    for _ in range(times):
        for loop in ("stock", "hrt"):
            r = spawn(module, loop, [tid], timeout=300)
            got[loop].append(r["outcomes"].get(tid, "crash" if r.get("crashed") else "missing"))
    return got


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-m", "--modules", nargs="+",
                   help="test_asyncio modules (or module.TestClass) to run")
    p.add_argument("--short", action="store_true", help=f"only {', '.join(SHORT_MODULES)}")
    p.add_argument("--rerun", type=int, default=3,
                   help="re-runs of each differing test, alone, on both loops (default 3)")
    p.add_argument("--json", metavar="FILE", help="write every outcome as JSON to FILE")
    p.add_argument("--child", metavar="MODULE", help=argparse.SUPPRESS)
    p.add_argument("--loop", choices=("stock", "hrt"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--ids", nargs="*", default=[], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return run_child(args.child, args.loop, args.out, args.ids)

    modules = args.modules or (SHORT_MODULES if args.short else DEFAULT_MODULES)
    modules = [m for m in modules if available(m)]
    py = f"CPython {sys.version.split()[0]}"
    spec = importlib.util.find_spec("hrtimer_cffi")
    where = spec.origin if spec else "not installed"
    print(f"== CPython's test.test_asyncio on the stock loop and on hrt.aio.EventLoop ({py}; "
          f"hrtimer_cffi from {where})", flush=True)
    print(f"{'module':<34} {'tests':>6} {'stock pass':>10} {'hrt pass':>9} {'skip':>5} "
          f"{'hrt loops':>9} {'stock s':>8} {'hrt s':>7}", flush=True)
    report: dict[str, Any] = {"python": py, "modules": {}}
    totals = {"tests": 0, "stock": 0, "hrt": 0}
    regressions: list[tuple[str, str, str]] = []
    skip_reasons: dict[tuple[str, str], int] = {}
    flaky: list[tuple[str, str, dict[str, list[str]]]] = []
    for module in modules:
        stock = spawn(module, "stock")
        ours = spawn(module, "hrt")
        so, ho = stock["outcomes"], ours["outcomes"]
        sp = sum(1 for o in so.values() if o in PASSING)
        hp = sum(1 for o in ho.values() if o in PASSING)
        skips = count(ho).get("skip", 0)
        made = ours.get("made", {})
        print(f"{module:<34} {len(so):>6} {sp:>10} {hp:>9} {skips:>5} "
              f"{made.get('loops', 0):>9} {stock['seconds']:>8.1f} {ours['seconds']:>7.1f}",
              flush=True)
        for r in (stock, ours):
            if r.get("crashed"):
                print(f"   {r['loop']} run crashed: {r.get('stderr', '')[-1500:]}", flush=True)
        totals["tests"] += len(so)
        totals["stock"] += sp
        totals["hrt"] += hp
        diffs = sorted(t for t, o in so.items() if o in PASSING and ho.get(t) not in PASSING)
        gains = sorted(t for t, o in ho.items() if o in PASSING and so.get(t) not in PASSING)
        for t in gains:
            print(f"   passes only on hrt: {t} (stock: {so.get(t)})", flush=True)
        for t in diffs:
            again = rerun(module, t, args.rerun) if args.rerun else {"stock": [], "hrt": []}
            if args.rerun and (any(o not in PASSING for o in again["stock"])
                               or any(o in PASSING for o in again["hrt"])):
                flaky.append((module, t, again))
                print(f"   flaky (differs, then not): {t}: {again}", flush=True)
            else:
                regressions.append((module, t, ours.get("details", {}).get(t, ho.get(t, "?"))))
                print(f"   FAILS ONLY ON HRT: {t}: {ho.get(t)}\n"
                      f"{ours.get('details', {}).get(t, '')}", flush=True)
        for loop, r in (("stock", stock), ("hrt", ours)):
            for t, o in r["outcomes"].items():
                if o == "skip":
                    reason = r.get("details", {}).get(t, "?").strip().splitlines()[0][:100]
                    key = (loop, reason)
                    skip_reasons[key] = skip_reasons.get(key, 0) + 1
        report["modules"][module] = {
            "stock": {"counts": count(so), "seconds": stock["seconds"],
                      "crashed": bool(stock.get("crashed"))},
            "hrt": {"counts": count(ho), "seconds": ours["seconds"], "made": made,
                    "crashed": bool(ours.get("crashed"))},
            "only_stock_passes": diffs, "only_hrt_passes": gains,
        }
    print(f"{'total':<34} {totals['tests']:>6} {totals['stock']:>10} {totals['hrt']:>9}")
    if flaky:
        print(f"{len(flaky)} flaky difference(s), not counted: "
              + ", ".join(t.rsplit('.', 2)[-2] + '.' + t.rsplit('.', 1)[-1] for _, t, _ in flaky))
    reasons = sorted({reason for _, reason in skip_reasons})
    if reasons:
        print("skipped (stock / hrt): reason")
        for reason in reasons:
            print(f"  {skip_reasons.get(('stock', reason), 0):>3} / "
                  f"{skip_reasons.get(('hrt', reason), 0):>3}: {reason}")
    report["skips"] = [{"reason": reason, "stock": skip_reasons.get(("stock", reason), 0),
                        "hrt": skip_reasons.get(("hrt", reason), 0)} for reason in reasons]
    report["totals"] = totals
    report["flaky"] = [{"module": m, "test": t, "reruns": a} for m, t, a in flaky]
    report["regressions"] = [{"module": m, "test": t, "detail": d} for m, t, d in regressions]
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    print("result: " + ("same as the stock loop" if not regressions
                        else f"{len(regressions)} test(s) fail only on hrt"))
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
