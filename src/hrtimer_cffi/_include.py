"""Where the C headers are installed, for code that writes its own callbacks."""

from __future__ import annotations

from pathlib import Path

__all__ = ["get_include"]


def get_include() -> str:
    """The directory holding the installed C headers ``hrtimer.h`` and
    ``hrt_builtins.h``, for compiling C callbacks against this package (as
    ``numpy.get_include()``): pass it as ``-I`` to the compiler, or in
    ``include_dirs`` to cffi or setuptools. A callback is an
    ``int (*)(struct hrt_timer *, void *)`` that returns ``HRT_RESTART`` or
    ``HRT_NORESTART``; give its address to ``hrt.CTimer``. Raises nothing: it
    only names the directory (``include/`` inside the installed package)."""
    return str(Path(__file__).resolve().parent / "include")
