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
# checks of the notebooks' quick outputs (tests/test_notebooks.py, which require them here)
test: setup
	PAPER_CODE_QUICK_OUTPUTS=required python -m pytest --nbval-lax --durations=15 notebooks tests

# speed only (results/benchmarks/; CI does not run these): on a quiet machine, nothing else running
bench: setup
	python benchmarks/bench_envs.py --out results/benchmarks/env_steps
	python benchmarks/bench_ppmo.py --inits 1 4 --profile 10 --out results/benchmarks/ppmo
	python benchmarks/bench_distributed.py --independent --collectives --repeats 5 --out results/benchmarks/distributed
	python benchmarks/bench_atari.py --before 9cf5efa --splits 4 3 0 --meta-epochs 5 --profile --out results/benchmarks/atari
	python benchmarks/bench_time_to_solve.py --out results/benchmarks/time_to_solve
	python benchmarks/bench_time_to_solve.py --compile --out results/benchmarks/time_to_solve_compiled

lab: setup
	jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks/README.md $(if $(filter 0,$(shell id -u)),--allow-root,)

clean-quick:
	rm -rf results-quick
