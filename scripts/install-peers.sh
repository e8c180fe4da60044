#!/usr/bin/env bash
# Installs the peers that the benchmarks measure recx against (PyTorch, transformers, peft)
# into a virtual environment, from the Python package index. About 7 GB (torch's wheels).
#
#   bash scripts/install-peers.sh [DIR]      # default DIR: target/peers
#   export RECX_PYTHON=target/peers/bin/python
#
# torch is pinned to 2.9.0, the libtorch that tch 0.22 (burn-tch 0.21) binds, so the same
# environment also builds recx's `tch` feature (device `libtorch`); the lines printed at the end
# set that up.
set -euo pipefail
dir=${1:-target/peers}
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet --upgrade pip
"$dir/bin/pip" install --quiet torch==2.9.0 transformers peft safetensors numpy gguf
"$dir/bin/python" -c 'import torch, transformers, peft; print("peers:", "torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)'
dir=$(cd "$dir" && pwd)
torch_lib=$("$dir/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
echo "export RECX_PYTHON=$dir/bin/python"
echo "# for \`--features tch\` builds and runs (device libtorch):"
echo "export VIRTUAL_ENV=$dir PATH=$dir/bin:\$PATH LIBTORCH_USE_PYTORCH=1 LD_LIBRARY_PATH=$torch_lib"
