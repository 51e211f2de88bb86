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

# Two test processes (CI has two cores): most of a cold run is one-threaded Numba
# compiles, so two halve much of it (614 -> 390 s measured). --dist loadfile keeps each
# file in one process, so a module's fixtures (a compiled reference, a study run) are
# built once. TEST_JOBS=0 runs in this process alone.
TEST_JOBS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile pieces tests README.md

study: $(STAMP)
	$(BIN)/pieces study

demo: $(STAMP)
	$(BIN)/pieces demo

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_count.py
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
