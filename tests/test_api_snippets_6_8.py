"""API.md sections 6-8 (sleeping, C callbacks, asyncio): the ```python blocks
run as written, extracted from API.md at test time (shared/API.md beside the
repository, else the committed copy tests/data/API.md; see conftest)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import api_md_path

import hrtimer_cffi as hrt

Snippets = Callable[[int], list[str]]


def run_section(section: int, snippets: Snippets) -> tuple[dict[str, Any], float]:
    """Execute the preamble then section ``section``'s blocks in one namespace;
    returns the namespace and the seconds the section took."""
    ns: dict[str, Any] = {"__name__": "api_md"}
    for i, code in enumerate(snippets(0)):
        exec(compile(code, f"API.md preamble block {i}", "exec"), ns)
    blocks = snippets(section)
    assert blocks, f"API.md ({api_md_path()}) has no python block in section {section}"
    t0 = time.monotonic()
    for i, code in enumerate(blocks):
        exec(compile(code, f"API.md section {section} block {i}", "exec"), ns)
    return ns, time.monotonic() - t0


def test_section_6_sleeping(api_snippets: Snippets) -> None:
    ns, took = run_section(6, api_snippets)
    late = ns["late"]
    assert isinstance(late, int) and late >= 0
    # 200 us + 1 ms + 1 ms of sleeps, none cut short.
    assert took >= 0.0022


def test_section_7_is_prose_and_its_promise_holds(api_snippets: Snippets) -> None:
    assert api_snippets(7) == []
    text = api_md_path().read_text(encoding="utf-8")
    assert "## 7. C callbacks" in text
    # "at least one built-in C callback usable from Python for latency
    # measurement (it records now - expires into a buffer Python reads)".
    rec = hrt.LatencyRecorder(5, interval=hrt.ms(1))
    assert isinstance(rec.timer, hrt.CTimer)
    rec.start(hrt.ms(1))
    assert rec.wait(5.0)
    samples = rec.samples()
    assert len(samples) == 5 and all(isinstance(s, int) and s >= 0 for s in samples)
    rec.close()


def test_section_8_asyncio(api_snippets: Snippets) -> None:
    before = hrt.expiry_stats(hard=True)["timers_run"]
    ns, took = run_section(8, api_snippets)
    assert asyncio.iscoroutinefunction(ns["main"])
    assert took >= 0.001
    # The wake-up came from a C timer on the HARD expiry thread.
    assert hrt.expiry_stats(hard=True)["timers_run"] > before


def test_section_8_on_uvloop(api_snippets: Snippets) -> None:
    uvloop = pytest.importorskip(
        "uvloop", reason="uvloop is not installed (optional; not a dependency)"
    )
    policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        _, took = run_section(8, api_snippets)
    finally:
        asyncio.set_event_loop_policy(policy)
    assert took >= 0.001
