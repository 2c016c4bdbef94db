# The README's commands. Every target installs what it needs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: messages run test fuzz crash-test lint openapi docs clean bench bench-quick check-wrk
BENCH_STAMP := $(VENV)/.installed-bench
DOCS_STAMP := $(VENV)/.installed-docs

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

$(DOCS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[docs]'
	touch $@ $(STAMP)

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	touch $@ $(STAMP)

run: $(STAMP)
	$(BIN)/rujukan migrate
	$(BIN)/rujukan serve

# In parallel: two pytest-xdist workers per core, since most tests wait (on a database, a server,
# a process) more than they compute; TEST_WORKERS=1 for one process. Each worker migrates
# databases of its own; the tests marked xdist_group("served") share one worker.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(2 * (os.cpu_count() or 1))')
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# Longer campaigns of the generated tests that `make test` runs bounded; fresh random seeds.
fuzz: $(TEST_STAMP)
	RUJUKAN_FUZZ_RANDOM=1 RUJUKAN_FUZZ_EXAMPLES=$${RUJUKAN_FUZZ_EXAMPLES:-300} \
	RUJUKAN_MODEL_EXAMPLES=$${RUJUKAN_MODEL_EXAMPLES:-100} RUJUKAN_MODEL_STEPS=$${RUJUKAN_MODEL_STEPS:-50} \
	$(BIN)/python -m pytest -m fuzz tests/proof

crash-test: $(TEST_STAMP)
	RUJUKAN_CRASH_KILLS=$${RUJUKAN_CRASH_KILLS:-50} RUJUKAN_CRASH_SEED=$${RUJUKAN_CRASH_SEED:-$$(date +%s)} \
	$(BIN)/python -m pytest -m crash tests/proof -s

# mypy checks the paths listed under [tool.mypy] in pyproject.toml.
lint: $(TEST_STAMP)
	$(BIN)/ruff check service tests migrations bench docs/hooks
	$(BIN)/mypy

# Both documents: 3.1 (what /openapi.json serves) and 3.0.3 (for gateways that import only 3.0).
openapi: $(STAMP)
	$(BIN)/rujukan openapi export > openapi/openapi.json
	$(BIN)/rujukan openapi export --version 3.0 > openapi/openapi-3.0.json

# The Indonesian catalogue: extract the messages of service/ (msg and N_) into messages.pot and
# merge them into messages.po; then translate the new, empty entries (tests/test_i18n.py fails on
# any message without a translation).
# One line per message, sorted, no locations and no dates: branches that add messages merge.
PO_ID := service/locale/id/LC_MESSAGES/messages.po
messages: $(TEST_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k msg -k N_ --no-location --sort-output --no-wrap \
		--omit-header -o service/locale/messages.pot .
	$(BIN)/pybabel update -i service/locale/messages.pot -d service/locale -l id \
		--no-fuzzy-matching --ignore-obsolete --no-wrap
	sed -e '/^"POT-Creation-Date: /d' $(PO_ID) > $(PO_ID).tmp && mv $(PO_ID).tmp $(PO_ID)

# The documentation site (mkdocs.yml), offline: no web fonts, no CDN. Open site/index.html.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

check-wrk:
	@command -v wrk >/dev/null 2>&1 || { echo "wrk is missing: install it with 'sudo apt-get install -y wrk' (Debian/Ubuntu)"; exit 1; }

# 1,000,000 referrals, 3 interleaved rounds of 10 s per operation, SQLite and PostgreSQL.
bench: check-wrk $(BENCH_STAMP)
	$(BIN)/python bench/run.py

# For iterating: 100,000 referrals, 1 round of 5 s.
bench-quick: check-wrk $(BENCH_STAMP)
	$(BIN)/python bench/run.py --rows 100000 --rounds 1 --duration 5 --unloaded-duration 2 --mixed-duration 5 --output bench/results/quick

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache tools/node_modules site
