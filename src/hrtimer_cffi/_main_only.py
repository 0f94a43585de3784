"""Refuse to load in a sub-interpreter, before the compiled core is touched.

The core's host hooks, expiry threads and fork handlers are process-wide and
belong to the main interpreter. ``_binding`` imports this module first.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []


def _in_main_interpreter() -> bool:
    try:
        import _interpreters as interp  # type: ignore[import-not-found]  # 3.13+
    except ImportError:
        try:
            import _xxsubinterpreters as interp  # type: ignore[import-not-found]
        except ImportError:  # pragma: no cover - a build without sub-interpreters
            return True

    def ident(i: Any) -> Any:
        return i[0] if isinstance(i, tuple) else i  # 3.13 adds how it was made

    return bool(ident(interp.get_current()) == ident(interp.get_main()))


if not _in_main_interpreter():
    raise ImportError(
        "hrtimer_cffi cannot be imported in a sub-interpreter: its timer core and "
        "expiry threads serve the main interpreter only"
    )
