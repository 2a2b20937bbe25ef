# Two commands do all set-up on a fresh machine:
#   make run   - create .venv if missing, install, run the default experiment
#   make test  - create .venv if missing, install, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= experiments/configs/default.yaml
JOBS ?= 2
# test processes (pytest-xdist, a module to a process); tests of the host's disk take turns (tests/conftest.py)
TEST_WORKERS ?= 2

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# exactly this torch first: a local CPU wheel; anything else pulls CUDA packages
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/piop compare $(CONFIG) --jobs $(JOBS)
	$(BIN)/piop report results/$$($(BIN)/python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["name"])' $(CONFIG))

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(BIN)/piop bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) results/*/
