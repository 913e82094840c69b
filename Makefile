# Set-up and entry points. `make demo` and `make test` each create .venv on first use,
# with the exact versions of requirements.lock (`make lock` refreshes it).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --constraint requirements.lock

.PHONY: demo test lint lock

# What `flowscan demo` and the other commands need.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: a bare `torch` requirement would pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(PIP) -e .
	touch $@

# The test tools and Pythia 8 + FastJet (`flowscan simulate`) on top.
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev,mc]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/flowscan demo

test: $(VENV)/.installed-dev
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check flowscan tests benchmarks

# Re-resolves every dependency (all extras) to its newest allowed release; torch stays
# the CPU build installed above. Run the tests on the result before committing it.
lock: $(VENV)/.installed
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra mc --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --no-emit-package torch \
		$(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS)) \
		--constraint <(echo torch==2.13.0) --custom-compile-command 'make lock' \
		-o requirements.lock
