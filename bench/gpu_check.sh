#!/usr/bin/env bash
# One prepared GPU check (see bench/gpu_check.py): correctness of every collection backend
# against plain hooks, and time / bare forward on a Qwen2.5-7B-shaped bf16 model, 8,192-token
# batches. Run on a lent GPU machine (device tool) with the wheels the image lacks carried in
# .whl (make them here with bench/fetch_gpu_wheels.sh):
#   run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=420)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, transformers, nnsight, transformer_lens; print('torch', torch.__version__, 'transformers', transformers.__version__, 'nnsight', nnsight.__version__)"
python3 bench/gpu_check.py --batches 4 --batch 4 --seq 2048 --repeats 3 "$@" 2>&1 | grep -v -i "warn"
