# `make test` and `make demo` create .venv when it is missing and install what they need.
PYTHON ?= python3
VENV ?= .venv
# the CPU/CUDA build of torch to install; override with e.g. `make test TORCH="torch==2.5.1"` (see DEVELOPERS.md)
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: test lint install demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# reinstall only when the package's metadata changes
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
