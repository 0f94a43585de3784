"""docs/GUIDE.md: its python blocks run as written, in order, in one namespace,
and the guide keeps the order a new user needs (plain calls first, the seed
vocabulary last)."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

import hrtimer_cffi as hrt

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "GUIDE.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
_HEADING = re.compile(r"^## (.*)$", re.M)


def guide_text() -> str:
    if not GUIDE.is_file():
        pytest.fail(f"{GUIDE} is missing")
    return GUIDE.read_text(encoding="utf-8")


def guide_blocks(text: str) -> list[tuple[str, str]]:
    """(section heading, code) for every ```python block, in order."""
    out: list[tuple[str, str]] = []
    parts = _HEADING.split(text)
    for heading, body in zip(["(top)", *parts[1::2]], [parts[0], *parts[2::2]], strict=True):
        out += [(heading, code) for code in _BLOCK.findall(body)]
    return out


def test_extraction_keeps_order_and_skips_other_languages() -> None:
    text = ("intro\n```python\nA = 1\n```\n## One\n```c\nint x;\n```\n"
            "```python\nB = 2\n```\n## Two\ntext ```python inline\n```python\nC = 3\n```\n")
    assert guide_blocks(text) == [("(top)", "A = 1\n"), ("One", "B = 2\n"), ("Two", "C = 3\n")]


def test_guide_sections_in_the_order_a_new_user_needs() -> None:
    headings = [h.lower() for h in _HEADING.findall(guide_text())]
    wanted = ["quick start", "which api", "hard", "manualclock", "asyncio", "seed vocabulary"]
    at = []
    for w in wanted:
        hits = [i for i, h in enumerate(headings) if w in h]
        assert hits, f"GUIDE.md has no section about {w!r}: {headings}"
        at.append(hits[0])
    assert at == sorted(at), f"sections out of order: {headings}"


def test_quick_start_comes_first_and_names_its_units() -> None:
    blocks = guide_blocks(guide_text())
    heading, first = blocks[0]
    assert heading == "Quick start"
    for name in ("call_later", "call_every", "hrt.ms("):
        assert name in first, name
    assert any("sleep_until" in code for h, code in blocks if h == "Quick start")
    # No duration written as a bare number (that is nanoseconds, the units trap).
    bare = re.compile(r"\b(call_later|call_every|sleep|start|advance)\((\d+)\s*[,)]")
    for h, code in blocks:
        assert not bare.search(code), f"bare-number duration in {h!r}: {bare.search(code)}"


def test_guide_snippets_run_as_written(unraisable: list[Any]) -> None:
    blocks = guide_blocks(guide_text())
    assert len(blocks) >= 6
    ns: dict[str, Any] = {"__name__": "guide_md"}
    for i, (heading, code) in enumerate(blocks):
        exec(compile(code, f"GUIDE.md block {i} ({heading})", "exec"), ns)
    # What the blocks left behind (their own asserts checked the rest).
    assert ns["done"].is_set() and not ns["h"].timer.is_active()
    assert ns["names"] == {"soft": "hrt-soft", "hard": "hrt-hard-py"}
    assert ns["expired"] == [hrt.ms(180)]
    assert ns["b"].count == 10
    assert not unraisable, [(u.exc_value, u.object) for u in unraisable]


def test_the_loop_thread_trap_the_guide_warns_about_is_real() -> None:
    """A callback of a plain call runs on hrt-soft, not on the caller's thread
    (why the guide hands asyncio work to loop.call_soon_threadsafe)."""
    seen: list[int] = []
    done = threading.Event()
    hrt.call_later(hrt.ms(1), lambda: (seen.append(threading.get_native_id()), done.set()))
    assert done.wait(5.0)
    assert seen and seen[0] != threading.get_native_id()


def test_readme_links_the_guide() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/GUIDE.md" in readme
