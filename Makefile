# Two commands: `make run` and `make test` do all set-up themselves.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
ARGS ?=

.PHONY: run web console doctor test lint format unit e2e demo report schema bench chromium redis claude clean

# pyenv reads .python-version (3.12); otherwise take the first python >= 3.12 on PATH.
$(PY):
	@set -e; py=""; \
	for c in python3.12 python3.13 python3.14 python3; do \
	  if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then py=$$c; break; fi; \
	done; \
	if [ -z "$$py" ] && command -v pyenv >/dev/null 2>&1; then py="$$(pyenv which python3.12 2>/dev/null || true)"; fi; \
	if [ -z "$$py" ]; then echo "error: Python >= 3.12 is required (mitmproxy 12); install it or use pyenv" >&2; exit 1; fi; \
	echo "creating $(VENV) with $$($$py --version)"; \
	$$py -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/mitmdump -s addon/router.py --listen-host $(HOST) -p $(PORT) $(ARGS)

# mitmweb's default columns plus the comment, where the router tells each flow's chain.
WEB_COLUMNS := tls icon path method status size time comment
web: $(STAMP)
	$(VENV)/bin/mitmweb -s addon/router.py --listen-host $(HOST) -p $(PORT) \
	  $(foreach c,$(WEB_COLUMNS),--set web_columns=$(c)) $(ARGS)

# mitmproxy's console: type `:router.status`, `:router.explain @focus`, `:router.reload`.
console: $(STAMP)
	$(VENV)/bin/mitmproxy -s addon/router.py --listen-host $(HOST) -p $(PORT) $(ARGS)

# Is everything in place for clients? CA, bundle, proxy, TLS, config; prints client settings.
doctor: $(STAMP)
	@$(PY) -m llmrouter.doctor --proxy http://$(HOST):$(PORT) $(ARGS)

# The report test renders HTML in Debian's chromium.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the report test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The shared-state tests start Debian's redis-server themselves (never a system service).
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing Debian's redis-server for the shared-state tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }

# Claude Code, pinned in package.json / package-lock.json, is a client the e2e tests drive.
CLAUDE := node_modules/.bin/claude
$(CLAUDE): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing Debian's nodejs and npm for the Claude Code tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

claude: $(CLAUDE)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(STAMP) chromium redis claude lint
	$(VENV)/bin/pytest $(ARGS)

demo: $(STAMP)
	$(PY) -m llmrouter.tools.demo $(ARGS)

report: $(STAMP)
	@$(PY) -m llmrouter.report $(ARGS)

schema: $(STAMP)
	$(PY) -m llmrouter.config --schema > profiles.schema.json

bench: $(STAMP)
	$(PY) bench/run.py $(if $(QUICK),--quick,) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache node_modules
