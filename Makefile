# The README's commands. Every target installs what it needs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test fuzz crash-test lint openapi clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@ $(STAMP)

run: $(STAMP)
	$(BIN)/rujukan migrate
	$(BIN)/rujukan serve

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

# Longer campaigns of the generated tests that `make test` runs bounded; fresh random seeds.
fuzz: $(TEST_STAMP)
	RUJUKAN_FUZZ_RANDOM=1 RUJUKAN_FUZZ_EXAMPLES=$${RUJUKAN_FUZZ_EXAMPLES:-300} \
	RUJUKAN_MODEL_EXAMPLES=$${RUJUKAN_MODEL_EXAMPLES:-100} RUJUKAN_MODEL_STEPS=$${RUJUKAN_MODEL_STEPS:-50} \
	$(BIN)/python -m pytest -m fuzz tests/proof

crash-test: $(TEST_STAMP)
	RUJUKAN_CRASH_KILLS=$${RUJUKAN_CRASH_KILLS:-50} RUJUKAN_CRASH_SEED=$${RUJUKAN_CRASH_SEED:-$$(date +%s)} \
	$(BIN)/python -m pytest -m crash tests/proof -s

lint: $(TEST_STAMP)
	$(BIN)/ruff check service tests migrations

openapi: $(STAMP)
	$(BIN)/rujukan openapi export > openapi/openapi.json

clean:
	rm -rf $(VENV) var .pytest_cache
