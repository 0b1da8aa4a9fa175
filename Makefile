# venus-mars: two commands for a fresh clone.
#   make demo   set up .venv, install the package, run `venus-mars demo`
#   make test   set up .venv with the dev extras, run the whole test suite (and the notebooks)
# Other targets: make setup, make bench, make constraints, make clean.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first, on its own: a plain or ranged torch requirement pulls a CUDA
# build of several GB, while the CPU build below installs in seconds where it lies on disk.
# Elsewhere, install the torch you want into $(VENV) first (see the README) or override:
#   make test TORCH_SPEC="torch==2.5.1"
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.venus-mars-installed
# The versions CI last tested. On Python 3.11 (the tested one) setup installs exactly these, so a
# fresh clone gets what was tested rather than whatever was released since; other Pythons, or
#   make setup CONSTRAINTS=
# take the newest versions pyproject.toml allows. To move to newer versions: `make clean`,
# `make test CONSTRAINTS=`, and when it passes, `make constraints` (rewrites the file from $(VENV)).
CONSTRAINTS ?= constraints-py311.txt

export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test bench constraints clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	@$(BIN)/python -c "import torch" 2>/dev/null && echo "torch already in $(VENV)" \
		|| $(BIN)/pip install --quiet "$(TORCH_SPEC)"
	@if [ -n "$(CONSTRAINTS)" ] && $(BIN)/python -c "import sys; sys.exit(sys.version_info[:2] != (3, 11))"; then \
		echo "installing the versions CI tested ($(CONSTRAINTS))"; c="-c $(CONSTRAINTS)"; \
	else echo "installing the newest versions pyproject.toml allows (no constraints for this Python)"; c=""; fi; \
	$(BIN)/pip install --quiet $$c -e ".[dev]"
	@touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/venus-mars demo

# --nbmake-timeout: nbclient (under nbmake) waits until the cell timeout after a cell that
# shows a plotly figure inside an ipywidgets Output (jupyter/nbclient#312), then goes on
# without error; fast-mode cells take seconds, so a short timeout keeps that wait short.
test: $(STAMP)
	VENUS_MARS_FAST=1 $(BIN)/python -m pytest tests notebooks --nbmake --nbmake-timeout=60 -p no:cacheprovider \
		--ignore=notebooks/clean

bench: $(STAMP)
	$(BIN)/python bench/extract.py

constraints: $(STAMP)
	@{ echo "# The versions CI last tested (Python $$($(BIN)/python -c 'import sys; print(*sys.version_info[:2], sep=".")'), $$(uname -s) $$(uname -m), $$(date +%F); torch is the Makefile's TORCH_SPEC)."; \
	  sed -n '2,4p' $(CONSTRAINTS); \
	  $(BIN)/pip list --format=freeze --exclude-editable 2>/dev/null | grep -v -i -E '^(torch|venus-mars|venus_mars|pip|setuptools|wheel)=='; } > $(CONSTRAINTS).tmp
	@mv $(CONSTRAINTS).tmp $(CONSTRAINTS) && echo "wrote $(CONSTRAINTS)"

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
