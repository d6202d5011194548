# Thin front end: creates the virtualenv and calls 'python -m harness'.
# Every option is a make variable, e.g. make local-train ARGS="--order 1,1,1".

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

ENV ?= envs/arima-env.yml
DATA ?= data/mlops_forecast_data2013.csv
SCRIPT ?= scripts
OUT ?=
ARGS ?=
DETERMINISM ?= on
PASS_ENV ?=
CPU ?=
TARGET ?= azureml
RUN ?=
A ?=
B ?=

# The variables reach the harness through the environment, not through the
# shell command line, so quotes, spaces and leading dashes in ARGS survive.
export ENV DATA SCRIPT OUT ARGS DETERMINISM PASS_ENV CPU TARGET RUN A B
RUN_OPTIONS = --env="$$ENV" --data="$$DATA" --script="$$SCRIPT" --args="$$ARGS" \
	--determinism="$$DETERMINISM" --pass-env="$$PASS_ENV" \
	$${OUT:+--out="$$OUT"} $${CPU:+--cpu="$$CPU"}

# Bytecode is written once here, so each command starts fast even where
# PYTHONDONTWRITEBYTECODE is set.
COMPILE = $(PY) -m compileall -q -j 0 $(VENV)/lib src

.PHONY: help lock build local-train cloud-train cancel parity test bench clean

help:
	@echo "make local-train   lock (if needed), build and train in the image on this machine"
	@echo "make cloud-train   the same on TARGET=azureml|azureml-v2|emulated"
	@echo "make cancel TARGET=... RUN=<id>   cancel a submitted remote run"
	@echo "make parity A=RUN B=RUN   compare two run folders"
	@echo "make test          the test suite (Docker tests included)"
	@echo "make lock | build | bench | clean"

# The harness alone: what lock, build and local-train need.
$(VENV)/.harness: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e .
	$(COMPILE)
	touch $@

# Test, Azure and training-script dependencies on top.
$(VENV)/.dev: $(VENV)/.harness
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[train,azure,dev]'
	$(COMPILE)
	touch $@

lock: $(VENV)/.harness
	@$(PY) -m harness lock --env="$$ENV"

build: $(VENV)/.harness
	@$(PY) -m harness build --env="$$ENV"

local-train: $(VENV)/.harness
	@$(PY) -m harness local-train $(RUN_OPTIONS)

cloud-train: $(VENV)/.dev
	@$(PY) -m harness cloud-train --target="$$TARGET" $${RUN:+--run="$$RUN"} $(RUN_OPTIONS)

cancel: $(VENV)/.dev
	@if [ -z "$$RUN" ]; then \
	  echo "error: make cancel needs the run id: make cancel TARGET=... RUN=<id>" >&2; \
	  exit 2; fi
	@$(PY) -m harness cancel --target="$$TARGET" "$$RUN"

parity: $(VENV)/.harness
	@if [ -z "$$A" ] || [ -z "$$B" ]; then \
	  echo "error: make parity needs two run folders: make parity A=runs/... B=runs/..." >&2; \
	  exit 2; fi
	@$(PY) -m harness parity "$$A" "$$B"

test: $(VENV)/.dev
	$(PY) -m pytest

bench: $(VENV)/.dev
	$(PY) bench/run.py

clean: $(VENV)/.harness
	@$(PY) -m harness clean
