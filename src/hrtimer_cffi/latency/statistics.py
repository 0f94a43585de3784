"""Percentiles and the per-mechanism result rows."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from .mechanisms import Mechanism

__all__ = ["PERCENTILES", "Result", "percentile", "summarize"]

def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile ``q`` (0..100) of a sorted, non-empty sequence."""
    n = len(sorted_values)
    # the tolerance keeps float error (99.9 / 100 * 1000 = 999.0000000000001)
    # from moving the rank up by one
    rank = max(1, math.ceil(q * n / 100.0 - 1e-9))
    return sorted_values[min(rank, n) - 1]


PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9))


@dataclasses.dataclass
class Result:
    """One mechanism's row: its statistics (ns) or why it has none."""

    mechanism: Mechanism
    samples: list[int] = dataclasses.field(default_factory=list)
    overruns: int | None = None
    complete: bool = True
    available: bool = True
    failed: bool = False
    reason: str | None = None
    note: str | None = None
    seconds: float = 0.0
    stats: dict[str, float] = dataclasses.field(default_factory=dict)


def summarize(samples: Sequence[int]) -> dict[str, float]:
    """min, avg, p50, p90, p99, p99.9 and max of ``samples`` (ns)."""
    s = sorted(samples)
    out: dict[str, float] = {"min": float(s[0]), "avg": sum(s) / len(s)}
    for name, q in PERCENTILES:
        out[name] = float(percentile(s, q))
    out["max"] = float(s[-1])
    return out
