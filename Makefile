# Every target creates its own virtualenv on first use, so each works as the only command.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint fmt clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP) ## start the service (embedded store under ./data unless OMNISTOCK_REDIS_URL is set)
	$(BIN)/omnistock serve

test: $(STAMP) ## the whole test suite against real servers the suite starts itself
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check app tests
	$(BIN)/ruff format --check app tests
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format app tests
	$(BIN)/ruff check --fix app tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
