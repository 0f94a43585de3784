"""The handle rules of API.md section 2 and the pointer kinds of section 3, on
HARD (expiry thread) and SOFT (dispatch thread) timers, on the real clock."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from typing import Any

import pytest

import hrtimer_cffi as hrt

WAIT = 5.0  # seconds: an upper bound for "this happens", never reached when correct


class _Blocking(hrt.HasTimer):
    """Its callback announces itself, then blocks until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.returned = threading.Event()
        self.thread: int | None = None
        self.in_callback: Any = None  # set by tests: called inside run()
        self.handle: Any = None

    def run(self, ctx: hrt.CallbackContext) -> hrt.TimerRestart | None:
        self.calls += 1
        self.thread = threading.get_ident()
        self.entered.set()
        result = None
        if self.in_callback is not None:
            result = self.in_callback(self, ctx)
        else:
            self.release.wait(WAIT)
        self.returned.set()
        return result


class HardBlocking(_Blocking):
    timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.HARD)


class SoftBlocking(_Blocking):
    timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.SOFT)


KINDS = {"HARD": HardBlocking, "SOFT": SoftBlocking}
OTHER = {"HARD": "SOFT", "SOFT": "HARD"}


@pytest.fixture(params=["HARD", "SOFT"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def wait_until(pred: Any, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_try_to_cancel_answers(kind: str) -> None:
    b = KINDS[kind]()
    h = b.start(hrt.s(60))
    assert h.try_to_cancel() == 1, "queued and removed"
    assert h.try_to_cancel() == 0, "not active"
    assert b.calls == 0

    h = b.start(0)
    assert b.entered.wait(WAIT)
    assert h.try_to_cancel() == -1, "its callback is running now"
    assert b.timer.is_callback_running() and b.timer.is_active()
    assert not b.timer.is_queued()
    b.release.set()
    assert b.returned.wait(WAIT)
    assert wait_until(lambda: not b.timer.is_active())
    assert h.try_to_cancel() == 0
    assert b.calls == 1


def test_cancel_from_another_thread_waits_for_the_callback(kind: str) -> None:
    b = KINDS[kind]()
    h = b.start(0)
    assert b.entered.wait(WAIT)
    seen: dict[str, Any] = {}

    def canceller() -> None:
        seen["result"] = h.cancel()
        seen["callback_had_returned"] = b.returned.is_set()
        seen["running"] = b.timer.is_callback_running()

    th = threading.Thread(target=canceller)
    th.start()
    th.join(0.15)
    assert th.is_alive(), "cancel() returned while the callback was still running"
    b.release.set()
    th.join(WAIT)
    assert not th.is_alive()
    assert seen == {"result": False, "callback_had_returned": True, "running": False}
    assert not b.timer.is_active()


def test_cancel_in_own_callback_does_not_wait_and_stops_restart(kind: str) -> None:
    b = KINDS[kind]()
    ready = threading.Event()
    got: dict[str, Any] = {}

    def inside(self: _Blocking, ctx: hrt.CallbackContext) -> hrt.TimerRestart:
        ready.wait(WAIT)
        got["cancel"] = self.handle.cancel()       # would deadlock if it waited
        got["running"] = ctx.timer.is_callback_running()
        ctx.forward_now(hrt.ms(1))
        return hrt.TimerRestart.RESTART            # the cancel wins over this

    b.in_callback = inside
    b.handle = b.start(hrt.ms(1))
    ready.set()
    assert b.returned.wait(WAIT), "cancel() inside the own callback deadlocked"
    assert got == {"cancel": False, "running": True}
    assert wait_until(lambda: not b.timer.is_active())
    time.sleep(0.02)
    assert b.calls == 1 and not b.timer.is_active()


def test_drop_in_own_callback_does_not_wait_and_cancels(kind: str) -> None:
    b = KINDS[kind]()
    ready = threading.Event()

    def inside(self: _Blocking, ctx: hrt.CallbackContext) -> hrt.TimerRestart:
        ready.wait(WAIT)
        del self.handle                            # the last reference: a drop
        ctx.forward_now(hrt.ms(1))
        return hrt.TimerRestart.RESTART

    b.in_callback = inside
    b.handle = b.start(hrt.ms(1))
    ready.set()
    assert b.returned.wait(WAIT), "dropping the handle inside its callback deadlocked"
    assert wait_until(lambda: not b.timer.is_active())
    time.sleep(0.02)
    assert b.calls == 1


def test_rearm_from_own_callback_replacing_the_handle(kind: str) -> None:
    # The replaced handle is dropped inside the callback: it belongs to an
    # older start, so it must not cancel the re-arm.
    b = KINDS[kind]()
    done = threading.Event()

    def inside(self: _Blocking, ctx: hrt.CallbackContext) -> None:
        if self.calls < 3:
            self.handle = self.start(hrt.ms(1))
        else:
            done.set()

    b.in_callback = inside
    b.handle = b.start(hrt.ms(1))
    assert done.wait(WAIT)
    assert b.calls == 3


def test_dropped_handle_means_the_callback_never_runs(kind: str) -> None:
    deleted, discarded, collected = KINDS[kind](), KINDS[kind](), KINDS[kind]()
    start = time.monotonic()
    h = deleted.start(hrt.ms(100))
    assert deleted.timer.is_queued()
    del h
    assert not deleted.timer.is_active()
    discarded.start(hrt.ms(100))        # a discarded handle: dropped at once
    assert not discarded.timer.is_active()
    # A handle collected by the cycle collector counts too.
    box: list[Any] = [collected.start(hrt.ms(100))]
    box.append(box)
    assert collected.timer.is_queued()
    del box
    gc.collect()
    assert not collected.timer.is_active()
    if time.monotonic() - start > 0.09:
        pytest.skip("the machine was too slow to drop the handles before the expiry")
    time.sleep(max(0.0, start + 0.15 - time.monotonic()))
    assert deleted.calls == discarded.calls == collected.calls == 0


def test_drop_from_a_callback_waits_for_a_running_timer(kind: str) -> None:
    # A timer of this kind drops, inside its callback, the handle of a timer of
    # the other kind whose callback is running on the other thread: the drop
    # returns only after that callback has returned.
    victim = KINDS[OTHER[kind]]()
    dropper = KINDS[kind]()
    holder: list[Any] = [victim.start(0)]
    assert victim.entered.wait(WAIT)
    seen: dict[str, bool] = {}

    def inside(self: _Blocking, ctx: hrt.CallbackContext) -> None:
        holder.clear()                             # drops the victim's handle
        seen["victim_returned"] = victim.returned.is_set()

    dropper.in_callback = inside
    dh = dropper.start(0)
    time.sleep(0.1)
    assert not dropper.returned.is_set(), "the drop did not wait for the running callback"
    victim.release.set()
    assert dropper.returned.wait(WAIT)
    assert seen == {"victim_returned": True}
    assert victim.thread != dropper.thread
    assert not victim.timer.is_active()
    dh.cancel()


def test_detach_keeps_firing_and_the_target_alive(kind: str) -> None:
    fired = threading.Event()

    def inside(self: _Blocking, ctx: hrt.CallbackContext) -> None:
        fired.set()

    b = KINDS[kind]()
    b.in_callback = inside
    t0 = time.monotonic()
    h = b.start(hrt.ms(300))
    h.detach()
    assert h.detached
    ref = weakref.ref(b)
    del b, h
    gc.collect()
    alive = ref() is not None
    if time.monotonic() - t0 < 0.25:  # still armed: a slow collect could outlast it
        assert alive, "an armed timer's target must stay alive"
    assert fired.wait(WAIT), "a detached handle's timer must still fire"
    assert wait_until(lambda: gc.collect() >= 0 and ref() is None), (
        "the target must die once its timer has completed"
    )


def test_detached_handle_stays_usable(kind: str) -> None:
    b = KINDS[kind]()
    h = b.start(hrt.s(60))
    h.detach()
    assert "detached" in repr(h)
    assert h.timer.is_queued() and h.target is b
    assert h.cancel() is True
    assert not b.timer.is_active()


def test_pinned_handle_refuses_detach(kind: str) -> None:
    b = KINDS[kind]()
    ph = b.start_pinned(hrt.s(60))
    assert isinstance(ph, hrt.PinTimerHandle)
    with pytest.raises(TypeError, match="cannot be detached"):
        ph.detach()
    assert not ph.detached and b.timer.is_queued()
    del ph
    assert not b.timer.is_active(), "a pinned handle cancels on drop"


def _release_later(b: _Blocking, delay: float = 0.1) -> threading.Timer:
    t = threading.Timer(delay, b.release.set)
    t.start()
    return t


@pytest.mark.parametrize("raises", [False, True], ids=["returns", "raises"])
def test_start_scoped_leaves_the_timer_dead(kind: str, raises: bool) -> None:
    b = KINDS[kind]()

    def body() -> str:
        # Leave the scope while the callback runs (it blocks until released).
        assert b.entered.wait(WAIT)
        _release_later(b)
        if raises:
            raise KeyError("from f")
        return "value"

    if raises:
        with pytest.raises(KeyError, match="from f"):
            b.start_scoped(0, body)
    else:
        assert b.start_scoped(0, body) == "value"
    assert b.returned.is_set(), "start_scoped returned while the callback ran"
    assert not b.timer.is_active()

    # Leaving before it fires: it never fires.
    b2 = KINDS[kind]()
    assert b2.start_scoped(hrt.ms(30), lambda: 7) == 7
    assert not b2.timer.is_active()
    time.sleep(0.05)
    assert b2.calls == 0


@pytest.mark.parametrize("raises", [False, True], ids=["returns", "raises"])
def test_scoped_context_manager_leaves_the_timer_dead(kind: str, raises: bool) -> None:
    b = KINDS[kind]()
    with pytest.raises(KeyError) if raises else _null():
        with b.scoped(0) as h:
            assert isinstance(h, hrt.PinTimerHandle)
            assert b.entered.wait(WAIT)
            _release_later(b)
            if raises:
                raise KeyError("inside")
    assert b.returned.is_set() and not b.timer.is_active()


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_handle_context_manager_cancels(kind: str) -> None:
    b = KINDS[kind]()
    with b.start(hrt.s(60)) as h:
        assert h.timer.is_queued()
    assert not b.timer.is_active()
    h.detach()
    with h:                               # a detached handle too
        b.start(hrt.s(60)).detach()
        assert b.timer.is_queued()
    assert not b.timer.is_queued()


def test_several_handles_to_one_timer(kind: str) -> None:
    b = KINDS[kind]()
    h1 = b.start(hrt.s(60))
    first = b.timer.expires
    h2 = b.start(hrt.s(120))              # re-arm: one timer, moved
    assert h1.timer is h2.timer is b.timer
    assert h1.target is h2.target is b
    assert b.timer.expires > first
    assert "superseded" in repr(h1) and "superseded" not in repr(h2)
    del h1                                # an older start's handle: no cancel
    assert b.timer.is_queued()
    assert h2.cancel() is True and h2.cancel() is False

    h = b.start(hrt.s(60))
    h = b.start(hrt.s(60))                # rebinding keeps the newest arm
    assert b.timer.is_queued()
    h3 = b.start(hrt.s(60))
    assert h.cancel() is True             # cancel() works through any handle
    assert not b.timer.is_queued()
    del h, h3


def test_handle_exposes_target_and_timer(kind: str) -> None:
    b = KINDS[kind]()
    h = b.schedule(hrt.s(60))
    assert h.target is b and h.timer is b.timer
    assert isinstance(h, hrt.ArcTimerHandle) and isinstance(h, hrt.TimerHandle)
    assert "queued" in repr(h)
    h.cancel()
    assert "stopped" in repr(h)


# ---------------------------------------------------------------- garbage cycles


_CYCLE_SCRIPT = r"""
import gc
import hrtimer_cffi as hrt
from hrtimer_cffi.testing import ManualClock

class Node(hrt.HasTimer):
    timer = hrt.TimerField()
    def run(self, ctx):
        return None

gc.disable()
for i in range(300):
    mc = ManualClock() if i % 2 else None
    n = Node()
    if mc is not None:
        mc.attach(n)
        n.clock = mc          # timer -> clock -> ... -> node: one cycle
    h = n.start(10**9)
    h.cancel()
    n.handle = h              # node -> handle -> node: a cycle with a live handle
    del n, h, mc
gc.collect()                  # finalizers of the whole cycle, in any order
print("collected")
"""


def test_garbage_cycles_of_handles_timers_and_clocks_are_collected_safely() -> None:
    """A handle, its timer and a ManualClock in one garbage cycle: the cycle's
    finalizers run in arbitrary order, and whichever runs last must not use a
    freed timer or domain (a use-after-free hung or crashed here before)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _CYCLE_SCRIPT], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "collected" in r.stdout
    assert "Exception ignored" not in r.stderr, r.stderr
