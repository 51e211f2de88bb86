# Each target sets up .venv itself, so a fresh clone needs only `make test` or `make study`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: setup test study demo bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dask]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q pieces tests README.md

study: $(STAMP)
	$(BIN)/pieces study

demo: $(STAMP)
	$(BIN)/pieces demo

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_count.py
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
