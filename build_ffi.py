"""Build hrtimer_cffi._core: the C core of csrc/ behind a cffi API-mode module.

The cdef is the part between the ``cffi:begin`` and ``cffi:end`` markers of
csrc/hrtimer.h, csrc/hrt_builtins.h and csrc/host/pyhost.h. The Python host
(csrc/host/pyhost.c: target references, ``RawTimerCallback::run`` — the one
callback of every Python timer, which calls the binding's dispatch function —
GIL batches, the GIL handover) is compiled in.
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"
HOST = CSRC / "host"
HEADERS = [CSRC / "hrtimer.h", CSRC / "hrt_builtins.h", HOST / "pyhost.h"]


def _cdef_of(header: Path) -> str:
    text = header.read_text()
    m = re.search(r"/\* cffi:begin \*/(.*?)/\* cffi:end \*/", text, re.S)
    if m is None:
        raise RuntimeError(f"{header}: no cffi:begin / cffi:end markers")
    return m.group(1)


# cffi brackets every C call with the standard macros, which release the
# GIL. Here the bracket is a host call frame (pyhost.h): the GIL stays held
# unless the core is about to wait, and comes back through the handover, so
# a callback running on an expiry thread under load gets it back at once.
_SOURCE = """
#include "hrtimer.h"
#include "hrt_builtins.h"
#include "pyhost.h"
#undef Py_BEGIN_ALLOW_THREADS
#undef Py_END_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS { struct hrt_py_call _call; hrt_py_call_enter(&_call);
#define Py_END_ALLOW_THREADS hrt_py_call_exit(&_call); }
"""


def _sources() -> list[str]:
    files = [*CSRC.glob("*.c"), *HOST.glob("*.c")]
    return sorted(str(p.relative_to(HERE)) for p in files)


ffibuilder = FFI()
ffibuilder.cdef("".join(_cdef_of(h) for h in HEADERS))
ffibuilder.set_source(
    "hrtimer_cffi._core",
    _SOURCE,
    sources=_sources(),
    include_dirs=[str(CSRC), str(HOST)],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    libraries=["pthread", "dl"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
