"""Micro-benchmarks with pytest-benchmark: each group pairs ours with the
standard-library peer (run_all.py prints the ratio per group).

Run: .venv/bin/python -m pytest benchmarks/test_bench_micro.py --benchmark-only
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import hrtimer_cffi as hrt

HOUR_NS = 3600 * 10**9


class Far(hrt.HasTimer):
    timer = hrt.TimerField(mode=hrt.TimerMode.REL | hrt.TimerMode.HARD)

    def run(self, ctx: hrt.CallbackContext) -> None:
        return None


def _noop() -> None:
    return None


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


@pytest.mark.benchmark(group="now")
def test_now_ours(benchmark: BenchmarkFixture) -> None:
    t = benchmark(hrt.now)
    assert t > 0


@pytest.mark.benchmark(group="now")
def test_now_peer_time_monotonic_ns(benchmark: BenchmarkFixture) -> None:
    t = benchmark(time.monotonic_ns)
    assert t > 0


@pytest.mark.benchmark(group="start+cancel")
def test_start_cancel_ours(benchmark: BenchmarkFixture) -> None:
    obj = Far()

    def pair() -> bool:
        return obj.start(HOUR_NS).cancel()

    assert benchmark(pair) is True


@pytest.mark.benchmark(group="start+cancel")
def test_start_cancel_peer_asyncio(benchmark: BenchmarkFixture,
                                   loop: asyncio.AbstractEventLoop) -> None:
    def pair() -> bool:
        h = loop.call_later(3600.0, _noop)
        h.cancel()
        return h.cancelled()

    assert benchmark(pair) is True


@pytest.mark.benchmark(group="call_later+cancel")
def test_call_later_cancel_ours(benchmark: BenchmarkFixture) -> None:
    def pair() -> bool:
        return hrt.call_later(HOUR_NS, _noop).cancel()

    assert benchmark(pair) is True


@pytest.mark.benchmark(group="call_later+cancel")
def test_call_later_cancel_peer_asyncio(benchmark: BenchmarkFixture,
                                        loop: asyncio.AbstractEventLoop) -> None:
    def pair() -> bool:
        h = loop.call_later(3600.0, _noop)
        h.cancel()
        return h.cancelled()

    assert benchmark(pair) is True
