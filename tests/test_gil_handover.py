"""The GIL handover: Python callbacks run while the interpreter is busy.

These tests prove the mechanism, not the machine's timing: a 1 kHz timer's
callback must run many times while another thread has not left a pure-Python
loop (without the handover each run waits out the 5 ms switch interval), and
nothing process-global is left changed. Bounds are generous on purpose.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import hrtimer_cffi as hrt
from hrtimer_cffi import _binding as _b

BUSY_S = 0.3          # length of a busy stretch
PERIOD = hrt.ms(1)    # 1 kHz
#: The switch interval during these tests: without the handover a callback
#: waits for it, so a long one makes the control unmistakable (~6 runs in
#: BUSY_S); the handover does not depend on it.
SWITCH_S = 0.05
#: Runs of a 1 kHz callback expected within BUSY_S under a busy interpreter,
#: at the least (300 would be perfect; on a quiet 2-CPU machine ~290 run).
MIN_RUNS = 100
#: At most this many where a run needs a switch-interval wait (~6 expected;
#: a loaded machine adds a few).
CONTROL_MAX = 60


class Ticker(hrt.HasTimer):
    """A drift-free 1 kHz periodic timer that counts its runs."""

    timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.HARD)

    def __init__(self) -> None:
        self.runs = 0

    def run(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart:
        self.runs += 1
        ctx.forward(ctx.now, PERIOD)
        return hrt.TimerRestart.RESTART


class SoftTicker(Ticker):
    timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.SOFT)


def busy(seconds: float) -> int:
    """Pure bytecode for ``seconds``: never releases the GIL on its own."""
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        for i in range(50):
            x += i
    return x


def best_of_two(measure: Callable[[], int]) -> int:
    """The larger of two measurements: a loaded CI machine can starve one
    300 ms window; a missing mechanism fails both."""
    first = measure()
    return first if first >= MIN_RUNS else max(first, measure())


def runs_during_busy(ticker: Ticker, in_thread: bool) -> int:
    """How often ``ticker`` ran while a thread was busy for BUSY_S."""
    with ticker.start(PERIOD):
        time.sleep(0.05)  # running
        before = ticker.runs
        if in_thread:
            t = threading.Thread(target=busy, args=(BUSY_S,))
            t.start()
            t.join()
        else:
            busy(BUSY_S)
        return ticker.runs - before


@pytest.fixture
def handover_on() -> Any:
    old = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_S)
    yield
    sys.setswitchinterval(old)
    _b.set_gil_handover(True)


def test_mechanism_per_version() -> None:
    expected = "switch-interval" if sys.version_info < (3, 12) else "pending-call"
    assert hrt.gil_handover().mechanism == expected


@pytest.mark.parametrize("kind", [Ticker, SoftTicker], ids=["hard", "soft"])
@pytest.mark.parametrize("in_thread", [False, True], ids=["main-busy", "worker-busy"])
def test_callbacks_run_while_a_thread_is_busy(kind: type[Ticker], in_thread: bool,
                                              handover_on: Any) -> None:
    before = hrt.gil_handover()
    on = best_of_two(lambda: runs_during_busy(kind(), in_thread))
    after = hrt.gil_handover()
    _b.set_gil_handover(False)
    off = runs_during_busy(kind(), in_thread)
    # Without the handover each run waits for the switch interval.
    assert off <= CONTROL_MAX, f"control: {off} runs without the handover"
    assert on >= MIN_RUNS, f"{on} runs in {BUSY_S}s at 1 kHz (without handover: {off})"
    assert after.requests > before.requests
    if not in_thread or after.mechanism == "pending-call":
        # (3.10/3.11: a busy worker yields through the drop request, not a park)
        assert after.yields > before.yields


def test_switch_interval_and_signals_unchanged() -> None:
    old_interval = sys.getswitchinterval()
    handlers = {s: signal.getsignal(s) for s in signal.valid_signals()
                if s not in (signal.SIGKILL, signal.SIGSTOP)}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        sys.setswitchinterval(0.002)
        t = Ticker()
        runs_during_busy(t, in_thread=False)
        assert sys.getswitchinterval() == pytest.approx(0.002)
        # Set by the user while timers fire under load: the user's value stays.
        with t.start(PERIOD):
            end = time.monotonic() + 0.1
            while time.monotonic() < end:
                sys.setswitchinterval(0.003)
            busy(0.05)
        time.sleep(0.01)
        assert sys.getswitchinterval() == pytest.approx(0.003)
    finally:
        sys.setswitchinterval(old_interval)
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == mask


def test_user_signal_handler_and_pending_calls_still_run() -> None:
    _testcapi = pytest.importorskip("_testcapi")  # ships with CPython's tests
    fired: list[str] = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append("alarm"))
    try:
        with Ticker().start(PERIOD):
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            _testcapi._pending_threadfunc(lambda: fired.append("pending"))
            busy(0.2)
            time.sleep(0.05)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert "alarm" in fired and "pending" in fired


class Waiter(hrt.HasTimer):
    """A HARD callback that waits for what the busy thread holds."""

    timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.HARD)

    def __init__(self, lock: threading.Lock, q: queue.Queue[int]) -> None:
        self.lock = lock
        self.q = q
        self.got: list[object] = []
        self.done = threading.Event()

    def run(self, ctx: hrt.CallbackContext) -> None:
        self.got.append(self.lock.acquire(timeout=10))
        self.lock.release()
        self.got.append(self.q.get(timeout=10))
        self.done.set()


def test_callback_waiting_for_the_preempted_thread_does_not_deadlock() -> None:
    """The preempted thread yields the GIL only until the expiry thread holds
    it: a callback that then waits for the preempted thread lets it go on."""
    lock = threading.Lock()
    q: queue.Queue[int] = queue.Queue()
    w = Waiter(lock, q)
    t0 = time.monotonic()
    with lock:
        h = w.start(hrt.ms(1))
        busy(0.2)  # the callback runs in here and blocks on `lock`
    busy(0.1)      # ... and then on the queue
    q.put(42)
    assert w.done.wait(10), "callback never finished"
    assert w.got == [True, 42]
    assert time.monotonic() - t0 < 5
    del h


def run_child(body: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    prelude = textwrap.dedent(
        """
        import os, signal, sys, threading, time
        import hrtimer_cffi as hrt

        class Ticker(hrt.HasTimer):
            timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.HARD)
            runs = 0
            def run(self, ctx):
                self.runs += 1
                ctx.forward(ctx.now, hrt.ms(1))
                return hrt.TimerRestart.RESTART

        def busy(seconds):
            end = time.monotonic() + seconds
            x = 0
            while time.monotonic() < end:
                for i in range(50):
                    x += i
        """
    )
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(body)],
                          capture_output=True, text=True, timeout=timeout)


def test_keyboard_interrupt_in_a_preempted_stretch() -> None:
    proc = run_child(
        """
        t = Ticker(); h = t.start(hrt.ms(1)); h.detach()
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            busy(10)
        except KeyboardInterrupt:
            print("interrupted after", round(time.monotonic() - t0, 2), "runs", t.runs > 50)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "interrupted after 0." in proc.stdout and "runs True" in proc.stdout


def test_sys_exit_in_a_preempted_stretch() -> None:
    proc = run_child(
        """
        t = Ticker(); h = t.start(hrt.ms(1)); h.detach()
        busy(0.2)
        sys.exit(3)
        """
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr == ""


def test_fork_in_a_preempted_stretch() -> None:
    proc = run_child(
        """
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        t = Ticker(); h = t.start(hrt.ms(1))
        results = []
        for _ in range(20):
            busy(0.01)
            pid = os.fork()
            if pid == 0:
                c = Ticker(); hc = c.start(hrt.ms(1))
                busy(0.1)
                os._exit(0 if c.runs > 20 else 1)
            results.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        busy(0.1)
        print("children", results.count(0), "parent runs", t.runs > 100)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "children 20 parent runs True" in proc.stdout, proc.stdout + proc.stderr


class Hog(hrt.HasTimer):
    """A callback that runs bytecode for ``seconds`` (a CPU-bound callback)."""

    def __init__(self, mode: hrt.TimerMode, seconds: float) -> None:
        hrt.TimerField.install(self, hrt.Timer(hrt.TimerMode.REL | mode), replace=True)
        self.seconds = seconds
        self.done = threading.Event()

    timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.SOFT)

    def run(self, ctx: hrt.CallbackContext) -> None:
        busy(self.seconds)
        self.done.set()


def ticks_during(hog_mode: hrt.TimerMode, ticker: Ticker) -> int:
    hog = Hog(hog_mode, BUSY_S)
    with ticker.start(PERIOD):
        time.sleep(0.05)
        before = ticker.runs
        with hog.start(hrt.ms(1)):
            assert hog.done.wait(10)
        return ticker.runs - before


def test_a_busy_soft_callback_does_not_delay_hard_ones(handover_on: Any) -> None:
    """Finding: a CPU-bound SOFT Python callback made HARD ones 5 ms late."""
    assert best_of_two(lambda: ticks_during(hrt.TimerMode.SOFT, Ticker())) >= MIN_RUNS


def test_a_soft_callback_never_takes_the_gil_from_a_hard_one(handover_on: Any) -> None:
    """The kernel's order: a HARD callback is never made to yield to SOFT ones
    (it yields only when it blocks, or after the switch interval like any
    thread). The 5 ms switch interval caps what SOFT gets meanwhile."""
    before = hrt.gil_handover()
    runs = ticks_during(hrt.TimerMode.HARD, SoftTicker())
    after = hrt.gil_handover()
    assert after.requests > before.requests  # the SOFT thread did ask
    # about one SOFT run per switch interval (~6); a yielding HARD one: ~300
    assert runs <= CONTROL_MAX, f"SOFT ran {runs} times inside a busy HARD callback"


@pytest.mark.parametrize("attempt", range(8))
def test_daemon_threads_parked_at_exit(attempt: int) -> None:
    """Daemon threads that run bytecode and sleep while the interpreter exits:
    a park in progress when the main thread finishes must end before the
    interpreter runs its last pending calls (on 3.13 a parked thread
    deadlocked finalization, about 1 exit in 25). The process exits."""
    proc = run_child(
        """
        def sleeper():
            while True:
                hrt.sleep(hrt.us(200))
        for _ in range(4):
            threading.Thread(target=sleeper, daemon=True).start()
        t = Ticker(); h = t.start(hrt.ms(1)); h.detach()
        busy(0.2)
        print("exiting", t.runs > 50)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "exiting True" in proc.stdout
