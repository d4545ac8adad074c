# The two commands that work on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATASET ?= sample/dataset

.PHONY: install browser run test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard shared/ipld/*.c shared/ipld/*.h)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The API client generator of tests/api: its command line pins an older typer than ours, and
	# the tests use its library only, so it comes without its dependencies (listed in [test]).
	$(BIN)/python -m pip install --quiet --no-deps openapi-python-client==0.29.1
	touch $(STAMP)

# The browser of tests/dashboard/: Debian's chromium and chromium-driver, installed when missing
# where apt-get can run (as root: CI on a fresh Debian machine). Elsewhere that test is skipped
# and says why; a failed install is a warning, not a failed `make test`.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium and chromium-driver for the browser test"; \
	    (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "warning: chromium could not be installed; tests/dashboard/test_browser.py will be skipped"; \
	  else \
	    echo "note: no /usr/bin/chromium (install Debian's chromium and chromium-driver as root); the browser test will be skipped"; \
	  fi; \
	fi

run: install
	REPLICATE="$(REPLICATE)" $(BIN)/python scripts/run_sample.py "$(DATASET)"

test: install browser
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/scan.py
	$(BIN)/python bench/pack.py --size 2GiB
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/smallfiles.py
	$(BIN)/python bench/smallfiles.py --files 100000 --size 1KiB
	$(BIN)/python bench/docrates.py
	$(BIN)/python bench/bundle.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/history.py
	$(BIN)/python bench/ranking.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/replication.py
	$(BIN)/python bench/retrieve.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/rescan.py
	$(BIN)/python bench/schema.py
	$(BIN)/python bench/dashboard.py

clean:
	rm -rf $(VENV) build *.egg-info .singularity
