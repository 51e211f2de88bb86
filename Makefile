# Each target sets up .venv itself, so a fresh clone needs only `make test` or `make study`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: setup test study demo bench clean

# setuptools announces every editable install with an InformationOnly notice that starts
# "Editable installation." (folders named like a package may shadow it); it says nothing
# about this project, so that one message is filtered. Every other warning still shows.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -e '.[test,dask]'
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
