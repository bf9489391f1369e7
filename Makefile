# The two set-up commands of the README:
#   make demo   creates .venv, installs anonbench, runs the study on the demo world (CPU)
#   make test   creates .venv, installs anonbench with its test extras, runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= profiles/local

.PHONY: demo test dry-run clean
$(BIN)/.anonbench-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.anonbench-installed
	$(BIN)/snakemake --profile $(PROFILE)

dry-run: $(BIN)/.anonbench-installed
	$(BIN)/snakemake --profile $(PROFILE) -n

test: $(BIN)/.anonbench-installed
	$(BIN)/python -m pytest -ra

clean:
	rm -rf results .snakemake
