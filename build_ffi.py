"""Build hrtimer_cffi._core: the C core of csrc/ behind a cffi API-mode module.

The cdef is the part of csrc/hrtimer.h and csrc/hrt_builtins.h between the
``cffi:begin`` and ``cffi:end`` markers. The glue below adds the one
``extern "Python"`` trampoline (our ``RawTimerCallback::run``) and the host
hooks that keep a timer's Python target alive while the timer is active.
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"
HEADERS = ["hrtimer.h", "hrt_builtins.h"]


def _cdef_of(header: Path) -> str:
    text = header.read_text()
    m = re.search(r"/\* cffi:begin \*/(.*?)/\* cffi:end \*/", text, re.S)
    if m is None:
        raise RuntimeError(f"{header}: no cffi:begin / cffi:end markers")
    return m.group(1)


_GLUE_CDEF = """
extern "Python" int _hrt_trampoline(struct hrt_timer *, void *, int64_t);

/* The callback every Python timer is set up with, and the hook installer. */
int hrt_py_run(struct hrt_timer *timer, void *data);
int hrt_py_install(void);
void hrt_py_close(void);
"""

_GLUE_SOURCE = r"""
#include "hrtimer.h"
#include "hrt_builtins.h"

static int _hrt_trampoline(struct hrt_timer *, void *, int64_t);

/*
 * `data` of a Python timer is a cffi handle (a PyObject holding the callback
 * target). The core holds one reference to it per activation.
 */
static volatile int py_closed;
static __thread PyGILState_STATE batch_gil;
static __thread int batch_depth;

static void py_acquire(void *data)
{
    PyGILState_STATE s = PyGILState_Ensure();
    Py_INCREF((PyObject *)data);
    PyGILState_Release(s);
}

static void py_release(void *data)
{
    if (py_closed)
        return;   /* the interpreter is going away: leak, never touch it */
    PyGILState_STATE s = PyGILState_Ensure();
    Py_DECREF((PyObject *)data);
    PyGILState_Release(s);
}

static void py_batch_enter(void)
{
    if (batch_depth++ == 0)
        batch_gil = PyGILState_Ensure();
}

static void py_batch_exit(void)
{
    if (--batch_depth == 0)
        PyGILState_Release(batch_gil);
}

int hrt_py_run(struct hrt_timer *timer, void *data)
{
    if (py_closed)
        return HRT_NORESTART;
    return _hrt_trampoline(timer, data, hrt_timer_cb_now(timer));
}

static const struct hrt_host py_host = {
    py_acquire, py_release, py_batch_enter, py_batch_exit,
};

int hrt_py_install(void)
{
    return hrt_set_host(&py_host);
}

void hrt_py_close(void)
{
    py_closed = 1;
}
"""


def _sources() -> list[str]:
    return sorted(str(p.relative_to(HERE)) for p in CSRC.glob("*.c"))


ffibuilder = FFI()
ffibuilder.cdef(
    "".join(_cdef_of(CSRC / h) for h in HEADERS) + _GLUE_CDEF
)
ffibuilder.set_source(
    "hrtimer_cffi._core",
    _GLUE_SOURCE,
    sources=_sources(),
    include_dirs=[str(CSRC)],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    libraries=["pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
