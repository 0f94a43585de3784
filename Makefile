# The short verbs: run, test, lint, bench, stress, install, ctest, clean.
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
CSRC   := $(wildcard csrc/*.c)
CHDR   := $(wildcard csrc/*.h)
PYSRC  := $(wildcard src/hrtimer_cffi/*.py)
CTESTS := $(wildcard tests/c/test_*.c)
CBUILD := build/c
CFLAGS := -std=gnu11 -Wall -Wextra -Werror -g -O1 -pthread -Icsrc
ASAN   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
VALGRIND := valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
TSAN   := -fsanitize=thread

.PHONY: run test lint bench stress fuzz install ctest pytest clean asyncio-suite

run: install
	$(VPY) -m hrtimer_cffi latency --duration 10 --rounds 5

test: install ctest lint pytest

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py build_ffi.py $(CSRC) $(CHDR) $(PYSRC)
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check '.[test,lint]'
	touch $@

# C unit tests: each tests/c/test_*.c is linked with the core and run under
# ASan+UBSan, then again under TSan; then the fuzz target's plain driver runs
# 20000 seeded random operation programs under ASan+UBSan.
ctest: $(CTESTS:tests/c/%.c=$(CBUILD)/%.asan) $(CTESTS:tests/c/%.c=$(CBUILD)/%.tsan) $(CBUILD)/fuzz_ops.asan
	@set -e; for t in $(filter-out %fuzz_ops.asan,$^); do echo "== $$t"; $$t; done
	$(CBUILD)/fuzz_ops.asan 20000 1

$(CBUILD)/fuzz_ops.asan: tests/c/fuzz_ops.c $(CSRC) $(CHDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS) $(ASAN) $< $(CSRC) -o $@

$(CBUILD)/%.asan: tests/c/%.c $(CSRC) $(CHDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS) $(ASAN) $< $(CSRC) -o $@

$(CBUILD)/%.tsan: tests/c/%.c $(CSRC) $(CHDR)
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS) $(TSAN) $< $(CSRC) -o $@

pytest: install
	$(VPY) -m pytest -q tests

lint: install
	$(VPY) -m ruff check src tests benchmarks examples build_ffi.py
	$(VPY) -m mypy --strict src examples/typed_example.py

bench: install
	$(VPY) benchmarks/run_all.py

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
	$(CC) $(CFLAGS) $< $(CSRC) -o $@

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
