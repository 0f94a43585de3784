# The compiled cffi module (build_ffi.py); cffi objects are untyped.
from typing import Any

ffi: Any
lib: Any
