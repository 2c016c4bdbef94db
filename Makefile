# The README's commands. Every target installs what it needs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint openapi clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[report]'
	touch $@

# The Node tools (TypeScript types from the OpenAPI document) install from their lock file
# into tools/node_modules, which git ignores.
$(TEST_STAMP): pyproject.toml tools/package.json tools/package-lock.json | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,report]'
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	touch $@ $(STAMP)

run: $(STAMP)
	$(BIN)/rujukan migrate
	$(BIN)/rujukan serve

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check service tests migrations

openapi: $(STAMP)
	$(BIN)/rujukan openapi export > openapi/openapi.json

clean:
	rm -rf $(VENV) var .pytest_cache tools/node_modules
