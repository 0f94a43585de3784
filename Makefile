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
TSAN   := -fsanitize=thread

.PHONY: run test lint bench stress install ctest pytest clean

run: install
	$(VPY) -m hrtimer_cffi latency --duration 10 --rounds 5

test: install ctest lint pytest

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py build_ffi.py $(CSRC) $(CHDR) $(PYSRC)
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check '.[test,lint]'
	touch $@

# C unit tests: each tests/c/test_*.c is linked with the core and run under
# ASan+UBSan, then again under TSan.
ctest: $(CTESTS:tests/c/%.c=$(CBUILD)/%.asan) $(CTESTS:tests/c/%.c=$(CBUILD)/%.tsan)
	@set -e; for t in $^; do echo "== $$t"; $$t; done

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

clean:
	rm -rf build dist $(VENV) src/*.egg-info
