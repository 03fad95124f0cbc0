# Two commands matter: `make demo` serves a real EEG, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo serve test lint bench profile clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench,profile]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/streaming demo $(EDF) $(if $(PORT),--port $(PORT))

serve: $(STAMP)
	$(BIN)/streaming serve

test: $(STAMP)
	$(BIN)/ruff check streaming tests scripts
	$(BIN)/mypy streaming
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check streaming tests scripts
	$(BIN)/ruff format --check streaming tests scripts
	$(BIN)/mypy streaming

bench: $(STAMP)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

profile: $(STAMP)
	scripts/profile.sh record $(PROFILE_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
