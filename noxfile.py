"""The version matrix: the whole pytest suite on every CPython 3.10-3.13 present.

``make test-all`` runs ``nox -s tests``. Each interpreter is looked up on PATH
(``python3.X``) and, failing that, among pyenv's installed versions; versions
that are not on this machine are left out (and said so), so the matrix runs
wherever the interpreters exist. The C tests and the linters do not depend on
the Python version: ``make test`` runs them once.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import nox

VERSIONS = ("3.10", "3.11", "3.12", "3.13")

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True


def _works(path: str, version: str) -> bool:
    try:
        out = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def find_interpreter(version: str) -> str | None:
    """An executable CPython ``version`` on this machine, or None."""
    candidates = [shutil.which(f"python{version}")]
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin",
                                                f"python{version}")), reverse=True)
    for c in candidates:
        if c and _works(c, version):
            return c
    return None


INTERPRETERS = {v: p for v in VERSIONS if (p := find_interpreter(v)) is not None}
MISSING = [v for v in VERSIONS if v not in INTERPRETERS]
if MISSING:
    print(f"noxfile: CPython {', '.join(MISSING)} not found on this machine: left out")
# nox finds "3.X" as python3.X on PATH: put each found interpreter's folder first.
os.environ["PATH"] = os.pathsep.join(
    [*dict.fromkeys(os.path.dirname(p) for p in INTERPRETERS.values()), os.environ["PATH"]]
)


@nox.session(python=list(INTERPRETERS))
def tests(session: nox.Session) -> None:
    """Build and install the package for this interpreter, run the pytest
    suite; tests that failed run once more (a timing test can lose to a
    loaded machine, a defect fails twice and fails the session)."""
    session.install(".[test]")
    cache = ["-o", f"cache_dir={session.create_tmp()}/pytest-cache"]
    session.run("python", "-m", "pytest", "-q", *cache, "tests", *session.posargs,
                success_codes=[0, 1])
    session.run("python", "-m", "pytest", "-q", *cache, "--lf", "--lfnf=none", "tests",
                *session.posargs, success_codes=[0, 5])


@nox.session(python=list(INTERPRETERS))
def bench_load(session: nox.Session) -> None:
    """Precision under load (benchmarks/bench_load.py) on this interpreter."""
    session.install(".")
    session.run("python", "benchmarks/bench_load.py", *session.posargs)
