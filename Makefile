# moat-bms: everything a developer or CI needs, from a fresh clone with python3, node/npm
# and make. Targets create the virtual environment and install what they need themselves.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
INSTALLED := $(VENV)/.installed
NODE_INSTALLED := node_modules/.installed

.PHONY: help install test lint typecheck pytest test-mpy codec docs check-generated demo clean

help:
	@echo "make demo       run the whole system simulated (see README)"
	@echo "make test       lint, type-check and run every test (creates .venv)"
	@echo "make test-mpy   run the firmware suite on real MicroPython (WebAssembly port)"
	@echo "make codec      regenerate the codecs from dbc/"
	@echo "make docs       regenerate docs generated from dbc/ and the config schema"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install when the project's dependencies change; otherwise this is a no-op.
$(INSTALLED): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,docs]'
	touch $@

$(NODE_INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(INSTALLED) $(NODE_INSTALLED)

lint: $(INSTALLED)
	$(BIN)/ruff check .

typecheck: $(INSTALLED)
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: install lint typecheck pytest

# The firmware suite on real MicroPython (the official WebAssembly port under node). pytest
# runs it too (tests/firmware/test_micropython.py); this target runs it alone.
test-mpy: install
	node tests/mpy/run.mjs

codec: $(INSTALLED)
	$(PY) -m tools.gen_codec

docs: $(INSTALLED)
	$(PY) -m tools.gen_protocol_doc
	$(PY) -m tools.gen_config_doc

check-generated: $(INSTALLED)
	$(PY) -m tools.gen_codec --check
	$(PY) -m tools.gen_protocol_doc --check
	$(PY) -m tools.gen_config_doc --check

# Until the simulator lands (issue 5), the demo only shows the command line.
demo: install
	$(BIN)/moat-bms --help

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis
