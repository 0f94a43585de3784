"""Shared test helpers: the ```python snippets of API.md by section, and a
capture of what reaches ``sys.unraisablehook``."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

# The start of a child-process script that forks: imports, and
# wait_child(pid, seconds) -> the child's exit code, or "hung" (killed).
CHILD_PRELUDE = """
import os, signal, sys, threading, time
import hrtimer_cffi as hrt

def wait_child(pid, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"
"""

_HEADING = re.compile(r"^## (.*)$", re.M)
_NUMBERED = re.compile(r"^(\d+)\.\s")
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def api_md_path() -> Path:
    """shared/API.md beside the repository (as in CI and the work tree), else
    the committed copy tests/data/API.md."""
    shared = REPO.parent / "shared" / "API.md"
    return shared if shared.is_file() else TESTS / "data" / "API.md"


def extract_api_snippets(section: int, text: str | None = None) -> list[str]:
    """The ```python blocks of API.md's section ``section`` ("## N. ..."), in
    order; section 0 is the preamble before the first heading. Unnumbered
    sections ("Errors and lifecycle") have no number and are never returned."""
    if text is None:
        text = api_md_path().read_text(encoding="utf-8")
    parts = _HEADING.split(text)
    # parts: [preamble, heading1, body1, heading2, body2, ...]
    bodies: dict[int, str] = {0: parts[0]}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        m = _NUMBERED.match(heading)
        if m:
            bodies[int(m.group(1))] = body
    return _BLOCK.findall(bodies.get(section, ""))


@pytest.fixture
def api_snippets() -> Callable[[int], list[str]]:
    """``api_snippets(n)``: the python blocks of API.md section n."""
    return extract_api_snippets


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Collects ``sys.unraisablehook`` arguments (from any thread) for the test."""
    seen: list[Any] = []
    lock = threading.Lock()

    def hook(args: Any) -> None:
        with lock:
            seen.append(args)

    monkeypatch.setattr(sys, "unraisablehook", hook)
    yield seen
