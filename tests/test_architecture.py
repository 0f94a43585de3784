"""The house's arrows run one way: no import circle among the package's
modules, no call circle among the C core's files, and only the binding
touches the compiled module (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "src" / "hrtimer_cffi"
CSRC = ROOT / "csrc"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_import_graph() -> dict[str, set[str]]:
    """Module -> package modules it imports at module level (imports inside
    functions are deliberate late bindings and do not count)."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in tree.body:
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets.append(stem)
                targets += [f"{stem}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
            for t in targets:
                if t in modules and t != mod and not mod.startswith(t + "."):
                    graph[mod].add(t)
    return graph


def c_call_graph() -> dict[str, set[str]]:
    """C file -> other C files of the core whose functions it calls."""
    files = sorted(CSRC.glob("*.c"))
    defined: dict[str, str] = {}
    text = {}
    for f in files:
        src = re.sub(r"/\*.*?\*/|//[^\n]*", "", f.read_text(), flags=re.S)
        text[f.name] = src
        for m in re.finditer(r"^[a-z_][\w \*]*?\b(\w+)\s*\([^;{]*\)\s*\{", src, re.M):
            defined[m.group(1)] = f.name
    graph: dict[str, set[str]] = {f.name: set() for f in files}
    for name, src in text.items():
        for m in re.finditer(r"\b(\w+)\s*\(", src):
            owner = defined.get(m.group(1))
            if owner and owner != name:
                graph[name].add(owner)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's nodes, found by depth-first search."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def dfs(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == start:
                key = frozenset(path)
                if key not in seen:
                    seen.add(key)
                    found.append([*path, start])
            elif nxt not in path and nxt > start:
                dfs(start, nxt, [*path, nxt])

    for n in sorted(graph):
        dfs(n, n, [n])
    return found


def test_no_python_import_circle() -> None:
    assert cycles(python_import_graph()) == []


def test_no_c_call_circle() -> None:
    assert cycles(c_call_graph()) == []


def test_the_checkers_see_circles() -> None:
    """The checkers themselves: a planted circle is found."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    g = python_import_graph()
    assert "hrtimer_cffi._binding" in g["hrtimer_cffi.timer"] | g["hrtimer_cffi.has_timer"]
    assert c_call_graph()["hrtimer.c"] >= {"timerqueue.c"}


def test_only_the_binding_touches_ffi_and_lib() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        if path.name == "_binding.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and "_core" in node.module:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_no_noqa_e402() -> None:
    hits = [str(p.relative_to(ROOT)) for p in PKG.rglob("*.py")
            if "noqa: E402" in p.read_text(encoding="utf-8")]
    assert hits == []
