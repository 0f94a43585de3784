"""The cffi extension (build_ffi.py) and the wheel's tag.

cffi builds ``_core`` for the stable ABI (``_core.abi3.so``) on a regular
CPython; the wheel is then tagged ``cp310-abi3``: one wheel for CPython 3.10
and later. Where cffi cannot use the stable ABI (a debug or free-threaded
CPython), the wheel keeps the interpreter's own tag.
"""

import platform
import sys
import sysconfig

from setuptools import setup


def _stable_abi() -> bool:
    """True where cffi builds the module with py_limited_api (its own rule)."""
    return (
        platform.python_implementation() == "CPython"
        and not hasattr(sys, "gettotalrefcount")
        and not sysconfig.get_config_var("Py_GIL_DISABLED")
    )


setup(
    cffi_modules=["build_ffi.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp310"}} if _stable_abi() else {},
)
