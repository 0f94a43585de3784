"""API.md sections 1-6 run as written (extracted from API.md at test time), and
the committed copy of API.md and the typed example stay true."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import REPO, TESTS, api_md_path, extract_api_snippets

import hrtimer_cffi as hrt

SECTIONS = [1, 2, 3, 4, 5, 6]


def run_section(section: int, ns: dict[str, Any], snippets: Callable[[int], list[str]]) -> None:
    for i, code in enumerate(snippets(section)):
        exec(compile(code, f"API.md section {section} block {i}", "exec"), ns)


def check_section(section: int, ns: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """What each section's snippets must have done, checked right after it ran."""
    if section == 1:
        t = ns["t"]
        assert isinstance(t, hrt.HasTimer) and t.flag.is_set()
        assert isinstance(ns["handle"], hrt.ArcTimerHandle)
    elif section == 2:
        assert ns["h2"].timer is ns["t"].timer
        assert not ns["t"].timer.is_queued(), "section 2 cancelled every handle it made"
    elif section == 3:
        assert ns["result"] is True
        assert isinstance(ns["ph"], hrt.PinTimerHandle)
        assert not ns["t"].timer.is_active()
    elif section == 4:
        tm = ns["tm"]
        assert tm is ns["tick"].timer and tm.soft_expires == tm.expires
        assert not tm.is_queued(), "forward() must not arm the timer"
        assert isinstance(ns["n"], int) and ns["n"] >= 0
    elif section == 5:
        out = ""
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and not ("two ms later" in out and "at" in out):
            time.sleep(0.005)
            out += capsys.readouterr().out
        assert "two ms later" in out.splitlines() and "at" in out.splitlines()
        assert ns["p"].detached and not ns["p"].timer.is_queued()
    elif section == 6:
        assert isinstance(ns["late"], int) and ns["late"] >= 0


def test_every_section_has_snippets(api_snippets: Callable[[int], list[str]]) -> None:
    assert api_snippets(0), "the preamble (imports) was not found"
    for section in [*SECTIONS, 8]:
        assert api_snippets(section), f"no python block found in section {section}"
    # Section 7 is prose only; a section that does not exist has none.
    assert api_snippets(7) == []
    assert api_snippets(99) == []


def test_extraction_by_number() -> None:
    text = (
        "pre\n```python\nA = 1\n```\n## Clocks\n```python\nX = 0\n```\n"
        "## 1. One\n```python\nB = 2\n```\ntext\n```python\nC = 3\n```\n"
        "## 10. Ten\n```python\nD = 4\n```\n```text\nnot python\n```\n"
    )
    assert extract_api_snippets(0, text) == ["A = 1\n"]
    assert extract_api_snippets(1, text) == ["B = 2\n", "C = 3\n"]
    assert extract_api_snippets(10, text) == ["D = 4\n"]
    assert extract_api_snippets(2, text) == []


@pytest.mark.parametrize("upto", SECTIONS)
def test_api_snippets_run_as_written(
    upto: int, api_snippets: Callable[[int], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    ns: dict[str, Any] = {"__name__": "api_md"}
    run_section(0, ns, api_snippets)
    for section in range(1, upto + 1):
        run_section(section, ns, api_snippets)
        check_section(section, ns, capsys)


def test_committed_api_copy_is_current() -> None:
    shared = REPO.parent / "shared" / "API.md"
    if not shared.is_file():
        pytest.skip("no shared/API.md beside the repository: the committed copy is in use")
    assert api_md_path() == shared
    copy = (TESTS / "data" / "API.md").read_text(encoding="utf-8")
    assert copy == shared.read_text(encoding="utf-8"), (
        "tests/data/API.md differs from shared/API.md: copy it again"
    )


def test_typed_example_runs() -> None:
    example = REPO / "examples" / "typed_example.py"
    r = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "typed example: ok" in r.stdout


# ---------------------------------------------------------------- our own docs


@pytest.mark.parametrize("doc", ["README.md", "docs/API.md"])
def test_doc_snippets_run(doc: str) -> None:
    """The python blocks of the README and docs/API.md run as written."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / doc).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, f"{doc} has no python blocks"
    ns: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, doc, "exec"), ns)
