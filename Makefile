# Everything a fresh machine needs: `make demo` and `make test` create .venv and install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev

.PHONY: install demo test lint test-browser lab bench sample clean

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(DEV): pyproject.toml $(RUNTIME)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(RUNTIME)

demo: $(RUNTIME)
	$(BIN)/recon demo --out out/demo

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

test-browser: $(DEV)
	$(BIN)/pytest -q -m browser -p no:cacheprovider tests/test_browser.py

lab: $(DEV)
	$(BIN)/jupyter lab notebooks/

bench: $(RUNTIME)
	$(BIN)/recon bench --rows 1000000

sample: $(RUNTIME)
	$(BIN)/python -m recon.devtools.sample

clean:
	rm -rf $(VENV) out work .pytest_cache .mypy_cache .ruff_cache
