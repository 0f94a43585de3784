"""``TimerField(hard=..., absolute=...)``: the keywords of the ``call_*``
functions beside the mode bits (issue 14, item 7); ``mode=`` keeps working and
a keyword that contradicts it is a ValueError."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import hrtimer_cffi as hrt
from hrtimer_cffi.testing import ManualClock

M = hrt.TimerMode


@pytest.mark.parametrize("kwargs, mode", [
    ({}, M.REL),
    ({"hard": True}, M.REL | M.HARD),
    ({"hard": False}, M.REL),
    ({"absolute": True}, M.ABS),
    ({"absolute": False}, M.REL),
    ({"hard": True, "absolute": True}, M.ABS | M.HARD),
    # with mode: they must agree; hard=True adds HARD to a mode with neither HARD nor SOFT
    ({"mode": M.REL | M.HARD, "hard": True}, M.REL | M.HARD),
    ({"mode": M.REL | M.SOFT, "hard": False}, M.REL | M.SOFT),
    ({"mode": M.ABS, "hard": True}, M.ABS | M.HARD),
    ({"mode": M.HARD, "absolute": True}, M.ABS | M.HARD),
    ({"mode": M.REL, "absolute": False, "hard": False}, M.REL),
])
def test_keywords_give_the_mode(kwargs: dict[str, Any], mode: hrt.TimerMode) -> None:
    field = hrt.TimerField(**kwargs)
    assert field.mode == mode

    class Obj(hrt.HasTimer):
        timer = field

        def run(self, ctx: hrt.CallbackContext) -> None:
            pass

    assert Obj().timer.mode == mode


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"mode": M.REL | M.HARD, "hard": False}, ValueError,
     f"hard=False contradicts mode={M.REL | M.HARD!r}"),  # (repr differs by version)
    ({"mode": M.REL | M.SOFT, "hard": True}, ValueError, "hard=True contradicts mode="),
    ({"mode": M.REL, "absolute": True}, ValueError,
     "absolute=True contradicts mode=<TimerMode.REL: 1>"),
    ({"mode": M.ABS, "absolute": False}, ValueError, "absolute=False contradicts mode="),
    ({"hard": 1}, TypeError, "hard must be a bool or None, got int"),
    ({"absolute": "yes"}, TypeError, "absolute must be a bool or None, got str"),
    ({"mode": M.SOFT | M.HARD, "hard": True}, ValueError, "SOFT and TimerMode.HARD exclude"),
])
def test_bad_or_contradicting_keywords(kwargs: dict[str, Any], exc: type[Exception],
                                       message: str) -> None:
    with pytest.raises(exc) as info:
        hrt.TimerField(**kwargs)
    assert type(info.value) is exc and message in str(info.value)


def test_hard_true_runs_on_the_hard_python_thread() -> None:
    class Probe(hrt.HasTimer):
        timer = hrt.TimerField(hard=True)

        def __init__(self) -> None:
            self.thread = ""
            self.done = threading.Event()

        def run(self, ctx: hrt.CallbackContext) -> None:
            with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
                self.thread = f.read().strip()
            self.done.set()

    p = Probe()
    with p.start(hrt.ms(1)):
        assert p.done.wait(5.0)
    assert p.thread == "hrt-hard-py"


def test_absolute_true_reads_expires_as_a_time() -> None:
    class At(hrt.HasTimer):
        timer = hrt.TimerField(absolute=True)

        def __init__(self) -> None:
            self.at: list[int] = []

        def run(self, ctx: hrt.CallbackContext) -> None:
            self.at.append(ctx.now)

    mc = ManualClock(hrt.s(10))
    a = At()
    mc.attach(a)
    h = a.start(hrt.s(11))        # at 11 s on the clock, i.e. 1 s from now
    assert a.timer.expires == hrt.s(11)
    mc.advance(hrt.ms(999))
    assert a.at == []
    mc.advance(hrt.ms(1))
    assert a.at == [hrt.s(11)]
    del h
