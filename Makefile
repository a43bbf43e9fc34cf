# greenpath: the README's two commands are `make run` and `make test`.
# Each creates .venv if missing and installs the project (torch==2.14.1, torchvision==0.29.1).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.greenpath-installed
CONFIG ?= config/config.yaml
CORES ?= all

.PHONY: setup run test lint format report bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,slurm]'
	@touch $(STAMP)

setup: $(STAMP)

# Offline data the config needs that comes from Debian (Fashion-MNIST); installs it as
# root, otherwise stops before any job with the exact command to run.
data-deps: $(STAMP)
	@$(PY) -m greenpath.system_deps --config $(CONFIG)

run: setup data-deps
	$(VENV)/bin/snakemake --cores $(CORES) --configfile $(CONFIG)

# The HTML report of the last run (runs the workflow first if anything is missing), and
# a screenshot of it when Chromium is installed.
report: setup data-deps
	$(VENV)/bin/snakemake --cores $(CORES) --configfile $(CONFIG)
	$(VENV)/bin/snakemake --cores $(CORES) --configfile $(CONFIG) --report results/report.html
	@if command -v chromium >/dev/null; then \
	  $(PY) scripts/figures.py screenshot --report results/report.html --out results/report_screenshot.png; \
	else echo "chromium not installed: no screenshot (apt-get install chromium)"; fi

lint: setup
	$(VENV)/bin/ruff check src tests scripts bench
	$(VENV)/bin/ruff format --check src tests scripts bench
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules
	$(VENV)/bin/snakemake --lint --configfile $(CONFIG)

format: setup
	$(VENV)/bin/ruff check --fix src tests scripts bench
	$(VENV)/bin/ruff format src tests scripts bench
	$(VENV)/bin/snakefmt Snakefile workflow/rules

test: setup lint
	$(VENV)/bin/pytest -q

# Benchmarks (bench/run.py): writes results/bench/*.json and results/bench/summary.md.
bench: setup
	$(PY) bench/run.py

# Every study's results (and Snakemake's records of them), or one study's: make clean STUDY=default
clean:
ifdef STUDY
	rm -rf results/$(STUDY)
else
	find results -mindepth 1 ! -name README.md -delete
	rm -rf .snakemake
endif
