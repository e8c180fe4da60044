#!/usr/bin/env bash
# Installs the peers that the benchmarks measure recx against (PyTorch, transformers, peft)
# into a virtual environment, from the Python package index. About 3 GB (torch's wheels).
#
#   bash scripts/install-peers.sh [DIR]      # default DIR: target/peers
#   export RECX_PYTHON=target/peers/bin/python
set -euo pipefail
dir=${1:-target/peers}
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet --upgrade pip
"$dir/bin/pip" install --quiet torch transformers peft safetensors numpy gguf
"$dir/bin/python" -c 'import torch, transformers, peft; print("peers:", "torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)'
echo "export RECX_PYTHON=$dir/bin/python"
