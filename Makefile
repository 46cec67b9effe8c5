# Two commands on a fresh machine: `make demo` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
PY_SYS ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch must come before anything that depends on it: an unpinned request pulls a multi-GB CUDA build.
CPU_TORCH ?= torch==2.13.0
# GPU: PyPI's torch 2.11.0 is the CUDA 13.0 build veRL 0.9.1 pins (setup.cfg's gpu extra); flash-attn 2.8.3 has no
# wheel on PyPI and compiles against the installed torch, so it needs torch and its build tools first and no
# build isolation (README "Install"; tests/e2e/test_readme.py keeps the three in step).
GPU_TORCH ?= torch==2.11.0
GPU_BUILD_TOOLS ?= setuptools wheel packaging ninja psutil
STAMP := $(VENV)/.install-stamp
PYTEST_ARGS ?=

.PHONY: install test test-fast demo bench lint clean probe

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(PIP) install -q '$(GPU_TORCH)' $(GPU_BUILD_TOOLS) && $(PIP) install -q --no-build-isolation -e '.[test,gpu]'; \
	else \
		$(PIP) install -q '$(CPU_TORCH)' && $(PIP) install -q -e '.[test]'; \
	fi
	$(VENV)/bin/qwenlong-verl --version
	touch $(STAMP)

# Three workers on two cores: many tests wait on a child's start-up, a server or a Ray actor, and a real run's
# processes come and go; measured on 2 cores, -n 3 took 13:32 with the CPUs never idle, -n 2 16:00.
TEST_WORKERS ?= 3

test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

# The inner loop: no subprocess-heavy or end-to-end tests (marked slow, or under tests/e2e/).
test-fast: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not slow" --ignore=tests/e2e $(PYTEST_ARGS)

demo: install
	$(VENV)/bin/qwenlong-verl doctor
	$(VENV)/bin/qwenlong-verl demo --out outputs/demo

bench: install
	$(PY) bench/run_all.py

# Hostile-input probes of the CLI (tools/probes/): exit 1 if any is answered poorly or loses data.
probe: install
	$(PY) tools/probe.py --report probe_report.md

lint: install
	$(VENV)/bin/ruff check qwenlong_verl tests bench tools
	$(VENV)/bin/ruff format --check qwenlong_verl tests bench tools

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache outputs demo_out
