"""Build hrtimer_cffi._core: the C core of csrc/ behind a cffi API-mode module.

The cdef is the part between the ``cffi:begin`` and ``cffi:end`` markers of
csrc/hrtimer.h, csrc/hrt_builtins.h and csrc/host/pyhost.h; the one
``extern "Python+C"`` trampoline (our ``RawTimerCallback::run``) is declared
here. The Python host (csrc/host/pyhost.c: target references, GIL batches,
the GIL handover) is compiled in.
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


# The trampoline is "Python+C": cffi defines it non-static, so the host in
# csrc/host/pyhost.c calls it.
_TRAMPOLINE_CDEF = """
extern "Python+C" int _hrt_trampoline(struct hrt_timer *, void *, int64_t);
"""

# cffi releases the GIL around every C call with the standard macros; the
# end of that bracket goes through the host, so a callback running on an
# expiry thread under load gets the GIL back at once (see pyhost.c).
_SOURCE = """
#include "hrtimer.h"
#include "hrt_builtins.h"
#include "pyhost.h"
#undef Py_END_ALLOW_THREADS
#define Py_END_ALLOW_THREADS hrt_py_restore_thread(_save); }
"""


def _sources() -> list[str]:
    files = [*CSRC.glob("*.c"), *HOST.glob("*.c")]
    return sorted(str(p.relative_to(HERE)) for p in files)


ffibuilder = FFI()
ffibuilder.cdef(
    "".join(_cdef_of(h) for h in HEADERS) + _TRAMPOLINE_CDEF
)
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
