"""Stress: threads start / cancel / try_to_cancel / forward / drop shared
timers on the real expiry threads while they fire.

The stress runs in a child process (this file run as a script), so a crash
or a deadlock is a failed test, not a hung run: the child arms
``faulthandler.dump_traceback_later(exit=True)`` as a deadlock watchdog and
the parent kills it after a hard timeout.

Every operation and every callback takes numbers from one global sequence
(``next()`` on an ``itertools.count`` is atomic under the GIL) before and
after it acts, so the log orders events without any lock. From the log the
child checks, per epoch (threads are stopped and every timer cancelled
between epochs, and the logs cleared):

* one-shot timers: a callback runs at most once per arming — every run is
  matched to a distinct start that could have landed between the previous
  run's dequeue and its own;
* after ``cancel()`` returns (True or False) or ``try_to_cancel()`` returns
  1 or 0, a later run needs a start that landed after that call began — so
  ``cancel() == True`` means the arming it removed never ran;
* periodic timers (forward + RESTART) stop for good when cancelled;
* ``call_later`` calls (one arming each, their target held only by the
  core): each runs exactly once unless a cancel returned True / 1, then
  never; nothing is lost;
* inside callbacks: ``try_to_cancel()`` on the own timer is -1, and a
  re-arm followed by an own ``cancel()`` returns True;
* callbacks that raise (injected faults) all reach ``sys.unraisablehook``.

Short run (~6 s) by default; ``HRT_STRESS_LONG=1`` runs 3 minutes
(``HRT_STRESS_SECONDS`` overrides both).
"""

from __future__ import annotations

import argparse
import faulthandler
import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

LONG = os.environ.get("HRT_STRESS_LONG") == "1"
SECONDS = float(os.environ.get("HRT_STRESS_SECONDS", "180" if LONG else "6"))


# ---------------------------------------------------------------- the test


@pytest.mark.parametrize("busy_main", [False, True], ids=["idle-main", "busy-main"])
def test_stress_threads_against_firing_timers(busy_main: bool) -> None:
    """``busy-main``: the main thread runs bytecode all through each epoch, so
    every Python callback takes the GIL through the handover (a park of the
    main thread, or a yield of a worker) while the workers contend for it."""
    hard_timeout = SECONDS * 3 + 90
    proc = subprocess.run(
        [sys.executable, __file__, "--seconds", str(SECONDS),
         *(["--busy-main"] if busy_main else [])],
        capture_output=True,
        text=True,
        timeout=hard_timeout,
    )
    summary = [ln for ln in proc.stdout.splitlines() if ln.startswith("STRESS ")]
    detail = (f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\n"
              f"stderr:\n{proc.stderr[-6000:]}")
    assert proc.returncode == 0, detail
    assert summary, detail
    figures = json.loads(summary[-1][len("STRESS "):])
    print(summary[-1])
    assert figures["violations"] == [], detail
    # The run did real work: timers fired, cancels removed armings, calls ran.
    assert figures["runs"] > 100, figures
    assert figures["cancel_removed"] > 10, figures
    assert figures["calls_run"] > 100, figures
    assert figures["faults_injected"] == figures["faults_reported"] > 0, figures
    assert figures["lost"] == 0, figures
    if busy_main:
        assert figures["handover_yields"] > 0, figures


# ---------------------------------------------------------------- the child

SEQ = itertools.count()


@dataclass
class Log:
    starts: list[tuple[int, int]] = field(default_factory=list)
    cancels: list[tuple[int, int]] = field(default_factory=list)  # ended an activation
    runs: list[tuple[int, int]] = field(default_factory=list)


def spin(seconds: float) -> None:
    """Pure bytecode for ``seconds``."""
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        for i in range(50):
            x += i


def run_child(seconds: float, busy_main: bool = False) -> int:
    import hrtimer_cffi as hrt

    violations: list[str] = []
    unraisable: list[Any] = []
    raised = [0]
    counts: dict[str, int] = {
        "ops": 0, "starts": 0, "cancels": 0, "cancel_removed": 0, "try_calls": 0,
        "forwards": 0, "forward_refused": 0, "drops": 0, "runs": 0, "calls": 0,
        "calls_cancelled": 0, "calls_run": 0, "epochs": 0, "in_callback_ops": 0,
        "forward_refused_in_callback": 0,
    }

    def hook(args: Any) -> None:
        unraisable.append(args.exc_value)

    sys.unraisablehook = hook

    class OneShot(hrt.HasTimer):
        timer = hrt.TimerField(hrt.TimerMode.REL)

        def __init__(self, idx: int) -> None:
            self.idx = idx
            self.log = Log()
            self.ctl: hrt.TimerHandle | None = None

        def arm(self, delay: int, slack: int) -> hrt.TimerHandle:
            tm = self.timer
            e = delay if tm.mode & hrt.TimerMode.REL else hrt.now(tm.clock) + delay
            s0 = next(SEQ)
            h = self.start(e, slack=slack)
            self.log.starts.append((s0, next(SEQ)))
            return h

        def run(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart | None:
            entry = next(SEQ)
            try:
                return self.act(ctx)
            finally:
                self.log.runs.append((entry, next(SEQ)))

        def act(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart | None:
            r = random.random()
            assert self.ctl is not None
            if r < 0.05:
                raised[0] += 1
                raise RuntimeError("injected fault")
            if r < 0.15:
                counts["in_callback_ops"] += 1
                got = self.ctl.try_to_cancel()
                if got != -1:
                    violations.append(f"try_to_cancel in own callback returned {got}")
            elif r < 0.25:
                counts["in_callback_ops"] += 1
                self.arm(random.randrange(0, 200_000), 0).detach()
                c0 = next(SEQ)
                got_c = self.ctl.cancel()
                self.log.cancels.append((c0, next(SEQ)))
                if got_c is not True:
                    violations.append(f"own cancel after own re-arm returned {got_c}")
            elif r < 0.40:
                counts["in_callback_ops"] += 1
                self.arm(random.randrange(0, 300_000), random.choice([0, 20_000])).detach()
            elif r < 0.42:
                time.sleep(0.0005)  # a slow callback: cancel() elsewhere must wait
            return None

    class OneShotHard(OneShot):
        timer = hrt.TimerField(hrt.TimerMode.REL | hrt.TimerMode.HARD)

    class OneShotAbs(OneShot):
        timer = hrt.TimerField(hrt.TimerMode.ABS)

    class OneShotAbsHard(OneShot):
        timer = hrt.TimerField(hrt.TimerMode.ABS | hrt.TimerMode.HARD)

    class Periodic(OneShot):
        timer = hrt.TimerField(hrt.TimerMode.REL | hrt.TimerMode.HARD)

        def act(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart | None:
            try:
                ctx.forward_now(200_000)
            except hrt.TimerStateError:
                # another thread re-armed it while this callback ran: that
                # start wins, and forward() on a queued timer is refused
                counts["forward_refused_in_callback"] += 1
                return None
            return hrt.TimerRestart.RESTART

    class PeriodicSoft(Periodic):
        timer = hrt.TimerField(hrt.TimerMode.REL | hrt.TimerMode.SOFT)

    kinds = [OneShot, OneShotHard, OneShotAbs, OneShotAbsHard] * 3 + [Periodic, PeriodicSoft]
    objs: list[OneShot] = []
    for i, k in enumerate(kinds):
        o = k(i)
        tm = o.timer
        # an hour ahead; for ABS timers on the clock's own scale (a bare
        # 3600 s would be in the past on a machine up for over an hour)
        far = hrt.s(3600) if tm.mode & hrt.TimerMode.REL else hrt.now(tm.clock) + hrt.s(3600)
        h = o.start(far)
        h.detach()
        o.ctl = h
        h.cancel()
        objs.append(o)

    # call_later bookkeeping, per epoch
    calls: list[Any] = []  # handles
    fired: list[list[int]] = []
    call_results: list[list[Any]] = []
    calls_lock = threading.Lock()

    def call_cb(token: int) -> None:
        fired[token].append(next(SEQ))

    stop = threading.Event()

    counts_lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        kept: list[hrt.TimerHandle] = []
        n = 0
        mine = dict.fromkeys(("starts", "cancels", "cancel_removed", "try_calls",
                              "forwards", "forward_refused", "drops", "calls"), 0)
        while not stop.is_set():
            n += 1
            o = rng.choice(objs)
            op = rng.random()
            try:
                if op < 0.30:
                    h = o.arm(rng.randrange(0, 300_000), rng.choice([0, 0, 50_000]))
                    mine["starts"] += 1
                    if rng.random() < 0.3:
                        kept.append(h)
                        if len(kept) > 6:
                            kept.pop(0)
                    else:
                        h.detach()
                elif op < 0.45:
                    assert o.ctl is not None
                    c0 = next(SEQ)
                    got = o.ctl.cancel()
                    o.log.cancels.append((c0, next(SEQ)))
                    mine["cancels"] += 1
                    mine["cancel_removed"] += got
                elif op < 0.55:
                    assert o.ctl is not None
                    c0 = next(SEQ)
                    r = o.ctl.try_to_cancel()
                    c1 = next(SEQ)
                    mine["try_calls"] += 1
                    if r in (0, 1):
                        o.log.cancels.append((c0, c1))
                        mine["cancel_removed"] += r
                    elif r != -1:
                        violations.append(f"try_to_cancel returned {r}")
                elif op < 0.62:
                    mine["forwards"] += 1
                    try:
                        iv = rng.choice([1, 1000, 10**6])
                        got_f = o.timer.forward(hrt.now(o.timer.clock), iv)
                        if got_f < 0:
                            violations.append(f"forward returned {got_f}")
                    except hrt.TimerStateError:
                        mine["forward_refused"] += 1
                elif op < 0.70:
                    if kept:
                        mine["drops"] += 1
                        del kept[rng.randrange(len(kept))]
                elif op < 0.90:
                    with calls_lock:
                        token = len(calls)
                        fired.append([])
                        call_results.append([])
                        h = hrt.call_later(rng.randrange(0, 500_000), call_cb, token,
                                           hard=rng.random() < 0.5)
                        calls.append(h)
                    mine["calls"] += 1
                else:
                    with calls_lock:
                        if not calls:
                            continue
                        token = rng.randrange(len(calls))
                        h = calls[token]
                    r2: Any = h.cancel() if rng.random() < 0.5 else h.try_to_cancel()
                    call_results[token].append(r2)
            except Exception as e:  # any exception is a finding
                violations.append(f"worker: {type(e).__name__}: {e}")
        kept.clear()
        with counts_lock:
            counts["ops"] += n
            for k, v in mine.items():
                counts[k] += v

    def check_epoch() -> None:
        for o in objs:
            log = o.log
            periodic = isinstance(o, Periodic)
            runs = sorted(log.runs)
            counts["runs"] += len(runs)
            starts = sorted(log.starts, key=lambda s: s[1])
            cancels = sorted(log.cancels, key=lambda c: c[1])
            used = [False] * len(starts)
            ci = 0
            p = 0
            cancel_floor = -1
            for j, (entry, _exit) in enumerate(runs):
                while ci < len(cancels) and cancels[ci][1] < entry:
                    cancel_floor = max(cancel_floor, cancels[ci][0])
                    ci += 1
                lo = cancel_floor
                if not periodic and j >= 2:
                    lo = max(lo, runs[j - 2][1])
                # lo never decreases: starts that ended before it, or are used,
                # are skipped for good
                while p < len(starts) and (starts[p][1] <= lo or (used[p] and not periodic)):
                    p += 1
                found = -1
                for k in range(p, len(starts)):
                    if starts[k][0] >= entry:
                        continue
                    if not used[k] or periodic:
                        found = k
                        break
                if found < 0:
                    violations.append(
                        f"{type(o).__name__} #{o.idx}: run {j} (seq {entry}) has no arming "
                        f"that could have caused it (after seq {lo})"
                    )
                    break
                used[found] = True
        counts["calls_run"] += sum(len(f) for f in fired)
        for token, f in enumerate(fired):
            removed = any(r is True or r == 1 for r in call_results[token])
            if len(f) > 1:
                violations.append(f"call {token} ran {len(f)} times")
            if removed and f:
                violations.append(f"call {token} ran although a cancel removed it")
            if removed:
                counts["calls_cancelled"] += 1

    def lost_calls() -> int:
        return sum(
            1 for token, f in enumerate(fired)
            if not f and not any(r is True or r == 1 for r in call_results[token])
        )

    deadline = time.monotonic() + seconds
    epoch_len = min(2.0, seconds)
    lost_total = 0
    while time.monotonic() < deadline:
        faulthandler.dump_traceback_later(60 + epoch_len, exit=True)
        counts["epochs"] += 1
        stop.clear()
        threads = [
            threading.Thread(target=worker, args=(counts["epochs"] * 100 + i,), daemon=True)
            for i in range(4)
        ]
        for t in threads:
            t.start()
        if busy_main:
            spin(epoch_len)
        else:
            time.sleep(epoch_len)
        stop.set()
        for t in threads:
            t.join()
        for o in objs:
            assert o.ctl is not None
            c0 = next(SEQ)
            o.ctl.cancel()
            o.log.cancels.append((c0, next(SEQ)))
        # every call_later not cancelled must run: wait for them (generous)
        wait_until = time.monotonic() + 20
        while lost_calls() and time.monotonic() < wait_until:
            time.sleep(0.01)
        lost_total += lost_calls()
        time.sleep(0.01)
        check_epoch()
        for o in objs:
            if o.timer.is_active():
                violations.append(f"#{o.idx} active after cancel at epoch end")
            o.log = Log()
        calls.clear()
        fired.clear()
        call_results.clear()
    faulthandler.cancel_dump_traceback_later()

    out = dict(counts)
    out["faults_injected"] = raised[0]
    out["faults_reported"] = sum(
        1 for e in unraisable if isinstance(e, RuntimeError) and str(e) == "injected fault"
    )
    out["other_unraisable"] = [
        repr(e) for e in unraisable
        if not (isinstance(e, RuntimeError) and str(e) == "injected fault")
    ][:5]
    if out["other_unraisable"]:
        violations.append(f"unexpected unraisable: {out['other_unraisable']}")
    out["lost"] = lost_total
    out["seconds"] = seconds
    out["handover_yields"] = hrt.gil_handover().yields
    out["violations"] = violations[:20]
    print("STRESS " + json.dumps(out), flush=True)
    return 1 if violations or lost_total else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=SECONDS)
    ap.add_argument("--busy-main", action="store_true")
    a = ap.parse_args()
    sys.exit(run_child(a.seconds, a.busy_main))
