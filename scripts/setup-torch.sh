#!/usr/bin/env bash
# Creates .venv-bench with a CPU build of PyTorch (and transformers, tokenizers, TRL, PEFT) for the benchmarks'
# side-by-side references and the fixture scripts.
# Usage: scripts/setup-torch.sh   (idempotent; needs network access to the Python package registry)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv-bench/bin/python ] && .venv-bench/bin/python -c "import torch, transformers, safetensors, tokenizers, tiktoken, trl, peft" 2>/dev/null; then
  echo "PyTorch already in .venv-bench: $(.venv-bench/bin/python -c 'import torch; print(torch.__version__)')"
  exit 0
fi
python3 -m venv .venv-bench
.venv-bench/bin/pip install --quiet --upgrade pip
# The +cpu build is found on the registry these machines use. Elsewhere, point pip at PyTorch's own
# CPU wheel index first: PIP_EXTRA_INDEX_URL=<that index> scripts/setup-torch.sh
.venv-bench/bin/pip install --quiet 'torch==2.13.0+cpu' numpy 'transformers==5.23.0' 'safetensors==0.8.0' 'tokenizers==0.23.3' 'tiktoken==0.14.0' 'trl==1.16.0' 'peft==0.21.2'
.venv-bench/bin/python -c 'import torch; print("installed PyTorch", torch.__version__)'
