"""``hrtimer-latency``: a cyclictest-style wake-up latency tool.

Each mechanism wakes up periodically at ``--interval`` and records its
*lateness*: the time its code runs minus the intended absolute expiry (ns).
The mechanisms run one after another, never concurrently:

* the **floor**: a plain ``timerfd`` read in a C loop (the floor of
  timerfd-driven wake-ups, as the core's expiry threads are);
* **ours**: a Python ``HasTimer`` on the HARD and on the SOFT context, the
  ``LatencyRecorder`` C callback, a ``sleep_until`` loop, and an
  ``aio.sleep_until`` loop;
* the **peers** from the standard library: a ``time.sleep`` loop, a
  ``threading.Timer`` chain, an asyncio ``loop.call_at`` chain, a
  ``sched.scheduler`` and (Python 3.13+) an ``os.timerfd_*`` loop.

``--load`` runs them idle or under load: the main thread busy in bytecode
(``python``), a busy worker thread (``thread``) or a busy process per CPU
(``cpu``); several loads are measured in turn and shown side by side.

The table reports min, avg, p50, p90, p99, p99.9 (from 1000 wake-ups on)
and max in microseconds per mechanism, and its p50 and p99 over those of the
floor. Percentiles use the nearest-rank method. ``--histogram`` writes
cyclictest's histogram format (one 1 us bucket per line, one column per
mechanism), ``--plot`` a latency-percentile chart, ``--json`` the results as
JSON on stdout.

Rooms: ``plan`` (what every mechanism shares), ``mechanisms`` (the floor,
ours, and the table of all), ``peers``, ``load``, ``statistics``, ``report``
and ``cli``.

Usage: ``python -m hrtimer_cffi latency [options]`` or ``hrtimer-latency``.
"""

from __future__ import annotations

from .cli import add_arguments, build_parser, finish_args, main, parse_time, run
from .load import LOADS
from .mechanisms import MECHANISMS, MODES, Mechanism, select
from .plan import PROG, Measurement, Plan
from .report import to_json
from .statistics import Result, percentile, summarize

__all__ = [
    "LOADS",
    "MECHANISMS",
    "MODES",
    "PROG",
    "Measurement",
    "Mechanism",
    "Plan",
    "Result",
    "add_arguments",
    "build_parser",
    "finish_args",
    "main",
    "parse_time",
    "percentile",
    "run",
    "select",
    "summarize",
    "to_json",
]
