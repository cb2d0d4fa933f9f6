# Outreach — the two commands that matter: `make run` (the demo) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run test lint typecheck catalogs extract-catalog check-catalog browser clean bench

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed catalogs

# Compiled catalogs (.mo) are built, not committed. The app can also read .po directly.
catalogs: $(VENV)/.installed
	$(BIN)/pybabel -q compile -d locales -D messages --use-fuzzy 2>/dev/null || $(BIN)/pybabel -q compile -d locales -D messages

extract-catalog: $(VENV)/.installed
	$(BIN)/pybabel -q extract -F babel.cfg -k _ --omit-header --no-location --sort-output -o locales/messages.pot .
	$(BIN)/pybabel -q update -i locales/messages.pot -d locales -D messages --omit-header --no-fuzzy-matching

# Fails when a user-facing string was added or changed without updating the catalogs.
check-catalog: $(VENV)/.installed
	$(PY) -m app.i18n_check

run: install
	OUTREACH_DEMO=1 SESSION_COOKIE_SECURE=0 $(BIN)/outreach db upgrade
	OUTREACH_DEMO=1 SESSION_COOKIE_SECURE=0 $(BIN)/outreach demo --host 127.0.0.1 --port 5000

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

# Debian's Chromium for the care-manager UI tests (Playwright drives it; no browser download). Installed
# when missing; when it cannot be (not root), the target fails: `make test` never runs without the UI tests.
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "make browser: $(CHROMIUM) is missing; install Debian's chromium (apt-get install chromium) as root" >&2; exit 1; fi; }
	@test -x $(CHROMIUM) || { echo "make browser: $(CHROMIUM) still missing after apt-get" >&2; exit 1; }

test: install browser lint check-catalog
	$(BIN)/outreach lint-content
	$(BIN)/outreach test-flows
	OUTREACH_REQUIRE_BROWSER=1 $(PY) -m pytest

bench: install
	$(PY) bench/sms_inbound.py

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
