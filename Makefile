# billfold: `make dev` runs it, `make test` proves it. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp

.PHONY: setup browser dev test lint typecheck imports migrations-check pytest coverage bench clean help \
	typescript typescript-types typescript-install-client hadolint

help:
	@echo "make dev    - set up and run billfold (SQLite, Stripe simulator, demo shop)"
	@echo "make test   - set up and run every check and test (browser tests in Chromium too)"
	@echo "make bench  - run the benchmarks (figures in bench/results/)"
	@echo "make coverage - the tests with branch coverage, summarised"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "billfold needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The browser tests drive Debian's Chromium, never a downloaded browser build. Installed once, when
# missing; where it cannot be (no root), the browser tests say so and skip (under CI=true, fail).
browser:
	@test -x /usr/bin/chromium || { \
	  echo "installing chromium for the browser tests (apt-get)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null ) \
	    || echo "could not install chromium: the browser tests will be skipped" >&2; }

dev: setup
	$(BIN)/billfold dev

lint: setup
	$(BIN)/ruff check src tests bench examples clients/typescript/scripts
	$(BIN)/ruff format --check src tests bench examples clients/typescript/scripts

hadolint: setup
	$(BIN)/hadolint Dockerfile

typecheck: setup
	$(BIN)/mypy

imports: setup
	$(BIN)/lint-imports

migrations-check: setup
	@rm -f .alembic-check.db
	@BILLFOLD_DATABASE_URL=sqlite:///.alembic-check.db $(BIN)/alembic upgrade head >/dev/null
	@BILLFOLD_DATABASE_URL=sqlite:///.alembic-check.db $(BIN)/alembic check; rc=$$?; rm -f .alembic-check.db*; exit $$rc

# The Node packages (the TypeScript client, the Express example): installed from their lock files
# when those changed (npm ci), the client's types checked against the server's OpenAPI document
# (`make typescript-types` regenerates them), type-checked and built. Their `node --test` suites run
# under pytest (tests/node), which starts the live billfold they talk to.
NODE_PACKAGES := clients/typescript examples/express
TS_SCHEMA := clients/typescript/src/schema.d.ts

typescript: setup
	@command -v npm >/dev/null || { echo "make typescript needs Node.js 18+ and npm" >&2; exit 1; }
	@for dir in $(NODE_PACKAGES); do \
	  test $$dir/node_modules/.installed -nt $$dir/package-lock.json || \
	    { (cd $$dir && npm ci --silent --no-audit --no-fund --ignore-scripts) && touch $$dir/node_modules/.installed; } || exit 1; \
	done
	@$(BIN)/python clients/typescript/scripts/openapi.py > clients/typescript/openapi.json
	@cd clients/typescript && npx --no-install openapi-typescript openapi.json --silent \
	  --output node_modules/.generated/schema.d.ts >/dev/null
	@diff -q $(TS_SCHEMA) clients/typescript/node_modules/.generated/schema.d.ts >/dev/null || { \
	  echo "$(TS_SCHEMA) differs from the server's OpenAPI document: run make typescript-types" >&2; \
	  diff -u $(TS_SCHEMA) clients/typescript/node_modules/.generated/schema.d.ts | head -40 >&2; exit 1; }
	@cd clients/typescript && npx --no-install tsc -p tsconfig.json --noEmit && npx --no-install tsc -p tsconfig.json
	@cd examples/express && npx --no-install tsc -p tsconfig.json

typescript-types: typescript-install-client
	@$(BIN)/python clients/typescript/scripts/openapi.py > clients/typescript/openapi.json
	cd clients/typescript && npx --no-install openapi-typescript openapi.json --output src/schema.d.ts

typescript-install-client: setup
	@cd clients/typescript && test -d node_modules || npm ci --silent --no-audit --no-fund --ignore-scripts

# Test files run in parallel (pytest-xdist; a file stays on one worker, so module fixtures are
# shared): PYTEST_WORKERS=0 runs everything in this process. `make coverage` runs the same tests
# measuring branch coverage (about a third slower) and summarises it.
PYTEST_WORKERS ?= 3
PYTEST_ARGS := -n $(PYTEST_WORKERS) --dist loadfile
pytest: setup browser
	$(BIN)/pytest $(PYTEST_ARGS)

coverage: setup browser typescript
	$(BIN)/pytest $(PYTEST_ARGS) --cov --cov-branch --cov-report=
	@$(BIN)/coverage report --skip-covered --sort=-cover --precision=1 | tail -n 12

test: lint hadolint typecheck imports migrations-check typescript pytest

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf clients/typescript/node_modules clients/typescript/dist examples/express/node_modules examples/express/dist
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/results test-artifacts
