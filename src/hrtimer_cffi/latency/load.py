"""The load a measurement can run under (``--load``)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

__all__ = ["LOADS", "background_load", "spin"]

LOADS: dict[str, str] = {
    "none": "none (an idle interpreter)",
    "python": "python (the main thread runs bytecode all along; the mechanisms are "
              "measured from a second thread)",
    "thread": "thread (a worker thread runs bytecode all along)",
    "cpu": "cpu (one busy process per CPU)",
}


def spin(stop: threading.Event) -> int:
    """Pure bytecode until ``stop`` is set: holds the GIL but for the
    interpreter's own switches."""
    x = 0
    is_set = stop.is_set
    while not is_set():
        for i in range(200):
            x += i
    return x


@contextlib.contextmanager
def background_load(kind: str) -> Iterator[None]:
    """Run the ``thread`` or ``cpu`` load for the ``with`` block (``none``
    and ``python`` need nothing here: ``python`` is the measuring run's own
    main thread, see ``run``)."""
    if kind == "thread":
        stop = threading.Event()
        t = threading.Thread(target=spin, args=(stop,), name="hrt-latency-load", daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()
    elif kind == "cpu":
        procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                 for _ in range(len(os.sched_getaffinity(0)))]
        try:
            yield
        finally:
            for pr in procs:
                pr.kill()
            for pr in procs:
                pr.wait()
    else:
        yield
