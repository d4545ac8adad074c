# The two commands that work on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATASET ?= sample/dataset

.PHONY: install run test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard shared/ipld/*.c)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/python scripts/run_sample.py "$(DATASET)"

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/scan.py
	@if [ -f bench/pack.py ]; then $(BIN)/python bench/pack.py; fi
	$(BIN)/python bench/bundle.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/ranking.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/retrieve.py

clean:
	rm -rf $(VENV) build *.egg-info .singularity
