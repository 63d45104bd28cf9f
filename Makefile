# The two set-up commands of the README: `make demo` and `make test`.
# Installs come from constraints.txt (the versions the tests passed with), so a clone made
# next month installs what passed today. `make deps-latest` tries the newest allowed versions;
# `make lock` rewrites constraints.txt after an intended upgrade.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP_VERSION := 26.3
ARGS   ?=

.PHONY: demo test test-postgres lint bench clean deps-latest lock mutation mutation-slice realdata fuzz openapi

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/otaudit demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

# The whole suite once more with PostgreSQL as the default test database (CI runs both).
test-postgres: $(STAMP)
	OTAUDIT_TEST_DATABASE=postgres $(BIN)/python -m pytest $(ARGS)

# Mutation testing (issue 23): 45 seeded mutants per module, or ARGS="--all"; the slice is
# what CI runs (a few mutants per module, judged together).
MUTATION_STAMP := $(VENV)/.mutation
$(MUTATION_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,mutation]"
	touch $(MUTATION_STAMP)

mutation: $(MUTATION_STAMP)
	$(BIN)/python tests/mutation/mutate.py $(ARGS)

mutation-slice: $(MUTATION_STAMP)
	$(BIN)/python tests/mutation/mutate.py --slice $(ARGS)

# Real-device corpus (../shared, GPL test data read in place): prints the agreement table.
realdata: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m realdata tests/realdata $(ARGS)

# Not CI: 10,000 fuzzed replies per protocol through the mutating proxy (simulators/fuzz);
# prints crashes, runs without status, invented facts and peak memory (tests/fuzz/campaign.py).
fuzz: $(STAMP)
	$(BIN)/python tests/fuzz/campaign.py --replies 10000 $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# The API's OpenAPI document, checked in (tests/api fails when it differs from the served one).
openapi: $(STAMP)
	$(BIN)/python -m otaudit.server.api.openapi docs/openapi.json

# Not CI: the newest versions pyproject.toml allows, in .venv-latest; prints what differs
# from constraints.txt, then runs the suite there so you see what an upgrade would break.
deps-latest:
	rm -rf .venv-latest && $(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install -q --upgrade pip
	.venv-latest/bin/python -m pip install -q --upgrade --upgrade-strategy eager -e ".[test]"
	.venv-latest/bin/python -m pip freeze --exclude-editable | sort > .venv-latest/freeze.txt
	@echo "== versions that differ from constraints.txt (< locked, > newest) =="
	@diff <(grep -v '^#' constraints.txt | sort) .venv-latest/freeze.txt || true
	.venv-latest/bin/python -m pytest -q -p no:cacheprovider $(ARGS)

# Rewrites constraints.txt from a fresh resolve of pyproject.toml (review the diff).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q "pip==$(PIP_VERSION)"
	.venv-lock/bin/python -m pip install -q -e ".[test,mutation]"
	{ echo "# Versions the test suite passed with; written by 'make lock'. Installs use -c."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable | sort -f; } > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .venv-latest build *.egg-info .pytest_cache .ruff_cache
