# coachd: `make run` (set-up, then live coaching) and `make test` (set-up, then every check).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
# The system packages only the tests need (a PostgreSQL server, Chromium and its driver).
TEST_STAMP := $(VENV)/.test-setup-stamp
# The newest supported interpreter that runs (a pyenv shim for a version not selected does not);
# override with `make PYTHON=...`.
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 python3.11 python3.10 python3.9 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3,9) <= sys.version_info[:2] <= (3,14))' 2>/dev/null && { echo $$p; break; }; done)
ARGS ?=
# CI runs the long soak tests too; a developer's `make test` leaves them out.
PYTEST_MARK := $(if $(filter true,$(CI)),,-m "not slow")
# CI also lists its slowest tests: where its time goes.
PYTEST_REPORT := $(if $(filter true,$(CI)),--durations=30,)
# Two workers: the real-time soaks on one while the other runs the CPU-bound tests
# (tests/conftest.py orders the tests and schedules them).
PYTEST_WORKERS := -n 2

.PHONY: setup test-setup run test lint typecheck unit soak bench check-wheels check-install install-service clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup-system.sh
	@bash scripts/setup-system.sh "$(PYTHON)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,stock]'
	@touch $(STAMP)

test-setup: $(TEST_STAMP)

$(TEST_STAMP): $(STAMP)
	@bash scripts/setup-system.sh "$(PYTHON)" --with-tests
	@touch $(TEST_STAMP)

run: setup
	$(BIN)/coachd run --open $(ARGS)

lint: setup
	$(BIN)/ruff check coachd tests
	$(BIN)/ruff format --check coachd tests

typecheck: setup
	$(BIN)/mypy

unit: test-setup
	$(BIN)/python -m pytest $(PYTEST_WORKERS) $(PYTEST_MARK) $(PYTEST_REPORT) $(ARGS)

test: lint typecheck unit

# The half-hour kiosk soak and the 10-minute fault soak, on demand (CI runs them for 5 and 3).
soak: test-setup
	SOAK_SECONDS=$${SOAK_SECONDS:-1800} FAULT_SOAK_SECONDS=$${FAULT_SOAK_SECONDS:-600} \
		$(BIN)/python -m pytest -m soak -s $(ARGS)

bench: setup
	$(BIN)/coachd bench pose --source ../shared/data/treadmill_side.mp4

# Asks the package index (so not part of `make test`): do the requirements resolve to wheels
# for Python 3.9-3.14 on x86_64 Linux? Results: docs/install.md.
check-wheels: setup
	$(BIN)/python scripts/check_wheels.py $(ARGS)

# Builds the wheel and installs it, from the index, into a fresh venv of another supported
# interpreter found on this machine, then runs analyze and check there (skips if there is none).
check-install: setup
	COACHD_INSTALL_TEST=1 $(BIN)/python -m pytest -s tests/test_install.py $(ARGS)

# Not after `setup`: run with sudo, that would leave a root-owned .venv in the checkout.
# install.sh builds its own venv in /opt/coachd (ARGS: --dry-run, --uninstall, --user ...).
install-service:
	bash systemd/install.sh $(ARGS)

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
