# Two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# The virtualenv every target uses. An existing one is reused, e.g. that of
# another checkout: `make docs VENV=../skprune/.venv` (it is created, and the
# package installed into it in editable mode, only where its stamp is missing
# or older than pyproject.toml or constraints.txt).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.skprune-installed
DOCS_STAMP := $(VENV)/.skprune-docs-installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist

CONSTRAINTS := constraints.txt

.PHONY: demo test docs docs-check chromium fashion-mnist clean gpu-check

# Bytecode: pip would compile every file of every dependency on one core
# (minutes, for torch's thousands of modules that are never imported).
# Instead each module is compiled when first imported and kept, also where
# PYTHONDONTWRITEBYTECODE is set, so that later processes (test workers,
# benchmark workers) start fast.
RUN := PYTHONDONTWRITEBYTECODE= $(PY)

# The package states lower bounds only (pyproject.toml); the exact torch
# builds of this virtualenv come from the constraints file.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-compile -c $(CONSTRAINTS) -e ".[test,benchmark]"
	touch $(STAMP)

# Sphinx and its extensions, on top of the test environment.
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[docs]"
	touch $(DOCS_STAMP)

# Debian's dataset-fashion-mnist package; the demo falls back to
# scikit-learn's digits where it cannot be installed.
fashion-mnist:
	@if [ ! -d $(FASHION_MNIST) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) \
		|| echo "dataset-fashion-mnist could not be installed; using scikit-learn digits"; \
	fi

demo: $(STAMP) fashion-mnist
	$(RUN) -m benchmarks.fairness --preset demo --out results/demo

# Lint first (pyproject.toml's [tool.ruff]), then the tests.
test: $(STAMP)
	$(PY) -m ruff check .
	$(RUN) -m pytest -n 2 -q

# The GPU check: one JSON file of speed measurements (benchmarks/gpu_check.py).
# Where there is no venv (a borrowed GPU machine with torch installed), give
# another interpreter and the venv is not built, e.g.
#   make gpu-check GPU_CHECK_PY=python3 GPU_CHECK_ARGS="--data-root .fmnist"
GPU_CHECK_PY ?= $(PY)
GPU_CHECK_OUT ?= results/gpu_check.json
GPU_CHECK_ARGS ?=

gpu-check: $(if $(filter $(PY) $(abspath $(PY)),$(GPU_CHECK_PY)),$(STAMP))
	$(GPU_CHECK_PY) -m benchmarks.gpu_check --out $(GPU_CHECK_OUT) $(GPU_CHECK_ARGS)

docs: $(DOCS_STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# Debian's chromium, for docs-check; installed when missing and running as root.
chromium:
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium; \
	fi

# Builds the docs, then opens every page in headless Chromium: fails on a
# formula MathJax left unrendered, a JavaScript error or a request that leaves
# the built site (tools/check_docs.py).
docs-check: docs chromium
	$(PY) tools/check_docs.py docs/_build/html

clean:
	rm -rf $(VENV) docs/_build results
