# ArcFlare — two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/uv
endif
VENV := .venv
PYTEST_ARGS ?=

.PHONY: install azurite test bench service-levels demo lint clean help chromium prometheus

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(UV):
	$(PYTHON) -m pip install --quiet uv

install: $(UV) ## create .venv with every workspace member (installs uv with pip if missing)
	$(UV) sync --frozen --all-packages --python $(PYTHON) --compile-bytecode
	@# the workspace's own sources too (editable installs, outside site-packages): every
	@# process of the local stack and of NVFlare would otherwise compile what it imports at
	@# each start where PYTHONDONTWRITEBYTECODE is set, ~1 s of CPU each (the images do the same)
	@$(VENV)/bin/python -m compileall -q -j 0 shared/src services/*/src >/dev/null
	@test -x $(VENV)/bin/arcflare

azurite: install ## Azurite (Azure Storage emulator, npm) under .tools/ for the azureblob tests; needs Node
	$(VENV)/bin/python -m tests.support.azurite install

test: install lint chromium prometheus azurite ## lint, then the whole suite (unit, conformance, wire, NVFlare integration, e2e, chaos, browser, observability)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: install chromium azurite ## run the benchmarks; writes bench-results.json
	$(VENV)/bin/python -m tests.benchmarks.harness $(BENCH)

service-levels: install ## docs/service-levels.md from bench-results.json (after make bench)
	$(VENV)/bin/python -m tests.benchmarks.service_levels

chromium: ## Debian's chromium for the browser tests, installed with apt-get when missing
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

prometheus: ## Debian's prometheus (server and promtool) for the observability tests, when missing
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

demo: install ## a whole federation on this machine: provision, deploy, train, MLflow
	$(VENV)/bin/arcflare demo $(DEMO_ARGS)

lint: install ## ruff over shared, services and tests (part of make test)
	$(VENV)/bin/ruff check shared services tests

clean: ## remove local state (.arcflare) and caches
	rm -rf .arcflare .pytest_cache .hypothesis bench-results.json test-output .tools
