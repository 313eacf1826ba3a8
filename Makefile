# Launchdeck: `make run` and `make test` work on a fresh Debian 12 machine (run as root or with sudo).
SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3
# Debian packages the product and its tests use.
APT_PACKAGES := chromium bubblewrap pgloader postgresql-client sqlite3
# Node tool folders (each has a committed package-lock.json).
NPM_DIRS := $(sort $(dir $(wildcard engine/*/node/package-lock.json engine/*/*/node/package-lock.json tests/emulators/node/package-lock.json)))

.PHONY: setup run test lint bench clean

setup:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv
	uv sync --frozen --compile-bytecode --python $(PYTHON)
	@# The project's own modules too (installed editable): each start of the CLI or a worker skips compiling them.
	$(VENV)/bin/python -m compileall -q -j 0 -x node_modules engine pipelines console >/dev/null
	@for d in $(NPM_DIRS); do \
	  if [ ! -f $$d/node_modules/.package-lock.json ] || [ $$d/package-lock.json -nt $$d/node_modules/.package-lock.json ]; then \
	    echo "npm ci in $$d"; (cd $$d && npm ci --no-audit --no-fund --loglevel=error) || exit 1; fi; done

run: setup
	$(VENV)/bin/launchdeck up

test: setup
	$(VENV)/bin/pytest

lint:
	$(VENV)/bin/lint-imports && $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check engine pipelines console tests bench && $(VENV)/bin/mypy engine pipelines console bench

clean:
	rm -rf $(VENV) data/workspace test-output
