# moat-bms: everything a developer or CI needs, from a fresh clone with python3, node/npm
# and make. Targets create the virtual environment and install what they need themselves.

# The interpreter of the virtual environment. Distributions build CPython with profile-guided
# optimisation and link-time optimisation; pyenv's and other source builds by default do not.
# Here Debian's /usr/bin/python3 runs the simulator (the firmware, the gateway, the
# physics) about 30 % faster than pyenv's python3 of the same version, and `make test` is
# mostly simulation (docs/performance.md). So the distribution's interpreter is taken when it
# is 3.11 or newer and can make a virtual environment (ensurepip: Debian's python3-venv),
# else python3 from PATH. PYTHON=... chooses another.
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo /usr/bin/python3 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
INSTALLED := $(VENV)/.installed
NODE_INSTALLED := node_modules/.installed
NICE ?=  # `make test` runs lint and typecheck beside pytest with `nice -n 10`

.PHONY: help install browser dbus mqtt-broker test lint typecheck pytest test-mpy bench \
	soak codec docs check-generated golden \
	demo screenshot clean

help:
	@echo "make demo       run the whole system simulated (see README)"
	@echo "make test       lint, type-check and run every test (creates .venv)"
	@echo "make test-mpy   run the firmware suite on real MicroPython (WebAssembly port)"
	@echo "make bench      run the benchmarks: benchmarks/results.json and a table (about an hour of CPU)"
	@echo "make soak       a simulated week with 4 nodes, then the long fuzz run (about an hour)"
	@echo "make codec      regenerate the codecs from dbc/"
	@echo "make docs       regenerate docs generated from dbc/ and the config schema"
	@echo "make golden     re-record the frame logs test_golden.py compares (frames meant to change)"
	@echo "make mqtt-broker install Debian's mosquitto for the MQTT tests (service off)"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install when the project's dependencies change; otherwise this is a no-op. The demo
# needs only the runtime dependencies (quick on a fresh clone); tests need the test extras,
# installed in the same pip run (one resolution, one editable build: 14 CPU s less on a
# fresh clone than the runtime first and the extras after); `make docs` adds matplotlib.
RUNTIME := $(VENV)/.installed-runtime
DOCS_INSTALLED := $(VENV)/.installed-docs
PIP_UPGRADED := $(VENV)/.pip-upgraded

$(PIP_UPGRADED): | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

$(RUNTIME): pyproject.toml | $(PIP_UPGRADED)
	$(PY) -m pip install --quiet -e .
	touch $@

$(INSTALLED): pyproject.toml | $(PIP_UPGRADED)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(RUNTIME)

$(DOCS_INSTALLED): pyproject.toml $(INSTALLED)
	$(PY) -m pip install --quiet -e '.[test,docs]'
	touch $@

$(NODE_INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(INSTALLED) $(NODE_INSTALLED)

# Debian's chromium + chromedriver for the browser test. Where they cannot be installed (no
# apt, no root) the browser test is skipped, saying why; CI requires them (.ci/run).
browser:
	@sh .ci/install-browser || echo "make: no browser: tests/web/test_browser.py will be skipped"

# Debian's dbus-daemon and dbus-send for the Venus OS D-Bus tests (tests/venus); skipped
# without them, saying why; CI requires them (.ci/run).
dbus:
	@sh .ci/install-dbus || echo "make: no dbus-daemon: the D-Bus tests in tests/venus will be skipped"

# Debian's mosquitto for the MQTT tests and benchmark (the tests start their own broker on a
# free port; the system service stays off). Without it those tests are skipped, saying why;
# CI requires them (.ci/run).
mqtt-broker:
	@sh .ci/install-mosquitto || echo "make: no mosquitto: tests/mqtt will be skipped"

lint: $(INSTALLED)
	$(NICE) $(BIN)/ruff check .
	$(NICE) $(BIN)/ruff format --check .

typecheck: $(INSTALLED)
	$(NICE) $(BIN)/mypy

# Two workers (this kind of machine has two cores); a test file stays on one worker, the
# slow files start first (tests/conftest.py).
pytest: install
	$(BIN)/pytest -n 2 --dist loadfile

# Lint and type-check run beside the tests, at a lower priority: the suite's length is its
# longest test file (the simulated week, tests/sim/test_week.py) on one of the two workers,
# and mypy's quarter of a minute fits in the other worker's slack instead of coming first.
# Their few lines of output may land between pytest's; a failure of any of the three fails
# `make test`.
test: install browser dbus mqtt-broker
	@$(MAKE) --no-print-directory -j3 NICE='nice -n 10' lint typecheck pytest

# The firmware suite on real MicroPython (the official WebAssembly port under node). pytest
# runs it too (tests/firmware/test_micropython.py); this target runs it alone.
test-mpy: install
	node tests/mpy/run.mjs

# Speed and memory figures next to their references (docs/performance.md). Benchmarks time
# things; tests never do.
bench: install mqtt-broker
	$(PY) -m benchmarks.run

# Reliability beyond `make test` (docs/safety.md): a simulated week of daily cycles with four
# nodes (memory, SoC error, phases, limit changes; figures in test-output/soak-results.json),
# after every fuzz test with twenty times the cases.
soak: install
	MOAT_BMS_FUZZ=long $(BIN)/pytest tests/fuzz -q
	$(PY) -m tests.soak --days 7 --nodes 4 --json test-output/soak-results.json

codec: $(INSTALLED)
	$(PY) -m tools.gen_codec

docs: $(DOCS_INSTALLED)
	$(PY) -m tools.gen_protocol_doc
	$(PY) -m tools.gen_config_doc
	$(PY) -m tools.plot_charge

# Re-record the candump logs that tests/sim/test_golden.py requires byte for byte: only for a
# change meant to alter frames (say why in its commit message).
golden: $(INSTALLED)
	$(PY) -m tools.record_golden

check-generated: $(INSTALLED)
	$(PY) -m tools.gen_codec --check
	$(PY) -m tools.gen_protocol_doc --check
	$(PY) -m tools.gen_config_doc --check

# The whole system simulated (nodes, gateway, inverter, web page) on python-can's virtual
# bus, a simulated minute per second; Ctrl-C stops. SPEED=max, SCENARIO=... to change.
SPEED ?= 60
SCENARIO ?= demo
demo: $(RUNTIME)
	$(BIN)/moat-bms sim --scenario $(SCENARIO) --speed $(SPEED)

# Refresh the page screenshot in docs/web.md.
screenshot: install browser
	MOAT_BMS_SCREENSHOT=docs/web-screenshot.png $(BIN)/pytest tests/web/test_browser.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis
