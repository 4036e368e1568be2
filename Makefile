# Single entry point. `make reproduce`: set up .venv if needed, then the DVC pipeline at quick
# scale (writes results-quick/). `make test`: same setup, then the whole test suite.
# Both are idempotent: the venv is reused and only reinstalled when pyproject.toml changes.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed

export PATH := $(BIN):$(PATH)
export OMP_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg
export PYTHONUNBUFFERED := 1

.PHONY: setup reproduce reproduce-paper test bench lab clean-quick

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, got {sys.version}"'
	# torch first, pinned: resolves to the local CPU wheel (an unpinned torch pulls a CUDA build)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 2>&1 | { grep -v "is ignored" || true; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]" 2>&1 | { grep -v "is ignored" || true; }
	$(BIN)/python -c "import paper_code, torch, gymnasium, ale_py, mujoco, cv2, dvc, papermill; print('setup ok: torch', torch.__version__)"
	@touch $(STAMP)

reproduce: setup
	dvc repro --glob '*@quick'

reproduce-paper: setup
	dvc repro --glob '*@paper'

# the notebooks first (nbval, at quick scale: they write results-quick/), then the unit tests and the
# checks of the notebooks' quick outputs (tests/test_notebooks.py, which require them here). Each run spreads
# over the cores (pytest-xdist: a worker per core, one torch thread each; --dist loadscope keeps a notebook's
# cells, and a test module's tests, in order on one worker). Notebooks 04 and 05 read notebook 01's and 02's
# outputs (dvc.yaml), so they run after the others. `pytest -n 0 ...` runs serially.
PYTEST = OMP_NUM_THREADS=1 PAPER_CODE_QUICK_OUTPUTS=required python -m pytest -n auto --dist loadscope --durations=15
NOTEBOOKS_AFTER = notebooks/04_architecture_generalization.ipynb notebooks/05_minimal_dataset.ipynb
NOTEBOOKS_FIRST = $(filter-out $(NOTEBOOKS_AFTER),$(sort $(wildcard notebooks/*.ipynb)))
test: setup
	$(PYTEST) --nbval-lax $(NOTEBOOKS_FIRST)
	$(PYTEST) --nbval-lax $(NOTEBOOKS_AFTER)
	$(PYTEST) tests

# speed only (results/benchmarks/; CI does not run these): on a quiet machine, nothing else running
bench: setup
	python benchmarks/bench_envs.py --out results/benchmarks/env_steps
	python benchmarks/bench_ppmo.py --inits 1 4 --profile 10 --out results/benchmarks/ppmo
	python benchmarks/bench_distributed.py --independent --collectives --repeats 5 --out results/benchmarks/distributed
	python benchmarks/bench_atari.py --before 9cf5efa --splits 4 3 0 --meta-epochs 5 --profile --out results/benchmarks/atari
	python benchmarks/bench_time_to_solve.py --out results/benchmarks/time_to_solve
	python benchmarks/bench_time_to_solve.py --compile --out results/benchmarks/time_to_solve_compiled
	python benchmarks/bench_collect.py --out results/benchmarks/collect

lab: setup
	jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks/README.md $(if $(filter 0,$(shell id -u)),--allow-root,)

clean-quick:
	rm -rf results-quick
