"""What the package ships: the wheel's tag against how ``_core`` is built, the
licence metadata, the C headers behind ``hrt.get_include()`` (a C callback is
compiled against them here), and an sdist that carries what its tests need.

The tests of the installed package also run as cibuildwheel's smoke test
(pyproject.toml, ``[tool.cibuildwheel]``) on every wheel it builds."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import hrtimer_cffi as hrt

REPO = Path(__file__).resolve().parent.parent
DIST = importlib.metadata.distribution("hrtimer_cffi")


def _core_path() -> Path:
    spec = importlib.util.find_spec("hrtimer_cffi._core")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin)


def _wheel_tags() -> list[str]:
    wheel = DIST.read_text("WHEEL")
    if wheel is None:
        pytest.skip("hrtimer_cffi was not installed from a wheel (no WHEEL metadata)")
    return [line.split(":", 1)[1].strip() for line in wheel.splitlines()
            if line.startswith("Tag:")]


# ---------------------------------------------------------------- the installed wheel


def test_wheel_tag_matches_how_the_module_is_built() -> None:
    tags = _wheel_tags()
    assert tags, "WHEEL metadata has no Tag"
    core = _core_path().name
    if core.endswith(".abi3.so"):
        # Built for the stable ABI: one wheel for CPython 3.10 and later.
        assert all(t.startswith("cp310-abi3-") for t in tags), (core, tags)
    else:
        # A version-specific module (debug or free-threaded CPython): the
        # wheel must name this interpreter only.
        py = f"cp{sys.version_info[0]}{sys.version_info[1]}"
        assert all(t.startswith(f"{py}-{py}") for t in tags), (core, tags)


def test_regular_cpython_builds_the_stable_abi_module() -> None:
    if hasattr(sys, "gettotalrefcount") or sys.implementation.name != "cpython":
        pytest.skip("a debug or non-CPython interpreter does not use the stable ABI")
    import sysconfig

    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        pytest.skip("a free-threaded CPython has no stable ABI before 3.15")
    assert _core_path().name == "_core.abi3.so"


def test_license_metadata_and_file() -> None:
    meta = DIST.metadata
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License") is None, "the deprecated License field is set too"
    files = [str(f) for f in DIST.files or []]
    lic = [f for f in files if f.endswith("licenses/LICENSE")]
    assert lic, f"LICENSE is not in the installed metadata: {files}"
    text = DIST.read_text("licenses/LICENSE") or ""
    assert text.startswith("MIT License") and "hrtimer_cffi authors" in text


def test_a_timer_fires_in_the_installed_package() -> None:
    fired = threading.Event()
    hrt.call_later(hrt.ms(1), fired.set)
    assert fired.wait(5.0)
    assert hrt.sleep_until(hrt.now() + hrt.ms(1)) >= 0


# ---------------------------------------------------------------- get_include()


def test_get_include_holds_the_public_headers() -> None:
    inc = Path(hrt.get_include())
    assert inc.is_absolute() and inc.is_dir(), inc
    assert inc.parent == Path(hrt.__file__).resolve().parent
    names = sorted(p.name for p in inc.iterdir())
    assert names == ["hrt_builtins.h", "hrtimer.h"], names
    csrc = REPO / "csrc"
    if csrc.is_dir():  # a source tree or unpacked sdist: the installed copies are current
        for name in names:
            assert (inc / name).read_bytes() == (csrc / name).read_bytes(), name


_USER_CB = r"""
#include <hrt_builtins.h>

/* Counts its runs in a struct hrt_counter; restarts until `limit` runs. */
int count_to_limit(struct hrt_timer *timer, void *data)
{
	struct hrt_counter *c = data;
	(void)timer;
	uint64_t n = __atomic_add_fetch(&c->count, 1, __ATOMIC_RELEASE);
	return n < c->limit ? HRT_RESTART : HRT_NORESTART;
}

size_t counter_size(void) { return sizeof(struct hrt_counter); }
"""


@pytest.fixture(scope="module")
def user_lib(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    import cffi

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the user callback")
    d: Path = tmp_path_factory.mktemp("get_include")
    (d / "cb.c").write_text(_USER_CB)
    r = subprocess.run(
        [cc, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
         "-I", hrt.get_include(), "-o", str(d / "cb.so"), str(d / "cb.c")],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    ffi = cffi.FFI()
    ffi.cdef("struct hrt_counter { uint64_t count; int64_t interval; uint64_t limit; };"
             "int count_to_limit(struct hrt_timer *, void *); size_t counter_size(void);")
    return ffi, ffi.dlopen(str(d / "cb.so"))


def test_a_c_callback_compiled_against_get_include_runs(user_lib: tuple[Any, Any]) -> None:
    ffi, lib = user_lib
    # The header the user compiled against describes the module's own struct.
    assert lib.counter_size() == hrt._binding.ffi.sizeof("struct hrt_counter")
    data = ffi.new("struct hrt_counter *")
    data.limit = 3
    t = hrt.CTimer(ffi.addressof(lib, "count_to_limit"), data, keep=data)
    t.start(hrt.ms(1))
    deadline = time.monotonic() + 5.0
    while (data.count < 3 or t.is_active()) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert data.count == 3 and not t.is_active()


# ---------------------------------------------------------------- the sdist


# Files outside tests/ that the test suite reads.
_TESTS_READ = ["README.md", "docs/API.md", "docs/GUIDE.md", "examples/typed_example.py"]


def test_sdist_carries_what_its_tests_need(tmp_path: Path) -> None:
    try:
        importlib.metadata.version("build")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the test extra's `build` is not installed")
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("no source tree beside the tests")
    # cwd: not the source tree, whose build/ folder would shadow the package.
    r = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir",
         str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (sdist,) = tmp_path.glob("hrtimer_cffi-*.tar.gz")
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert not [n for n in names if "__pycache__" in n or n.endswith((".so", ".pyc"))]
    need = {"LICENSE", "pyproject.toml", "setup.py", "build_ffi.py", "tests/conftest.py",
            "tests/data/API.md", "csrc/hrtimer.h", "csrc/host/pyhost.c", *_TESTS_READ}
    need |= {str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts}
    assert not sorted(need - names), f"{top} lacks {sorted(need - names)}"


# ---------------------------------------------------------------- make run / make install


def _make_n(target: str, venv: Path) -> str:
    make = shutil.which("make")
    if make is None or not (REPO / "Makefile").is_file():
        pytest.skip("no make or no Makefile beside the tests (an sdist ships none)")
    r = subprocess.run([make, "-n", "-C", str(REPO), f"VENV={venv}", target],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_make_run_installs_the_package_alone(tmp_path: Path) -> None:
    """On a fresh clone `make run` builds the package without the test and lint
    extras; `make install` (what test and lint need) adds them."""
    run = [line for line in _make_n("run", tmp_path / "venv").splitlines() if "pip install" in line]
    assert run and all("[" not in line and line.rstrip().endswith(" .") for line in run), run
    dev = [line for line in _make_n("install", tmp_path / "venv").splitlines()
           if "pip install" in line]
    assert dev and all("'.[test,lint]'" in line for line in dev), dev
