#!/usr/bin/env bash
# One prepared GPU check (see bench/gpu_check.py): on a Qwen2.5-7B-shaped bf16 model with random
# weights, every collection backend against plain hooks and its time ÷ bare forward (8,192-token
# batches), head importance (LAHIS, gradient), MCQ scoring, one LoRA SFT step and one fact-grouped
# GRPO step, with peak memory. Writes $OUT/gpu_check.json (and $OUT/gpu_check.log). Run it on a
# lent GPU with the wheels the image lacks carried in .whl (make them here with
# bench/fetch_gpu_wheels.sh):
#   run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=420)
# On CPU, `bash bench/gpu_check.sh --tiny` checks the script itself.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
ON_GPU=0; command -v nvidia-smi >/dev/null && ON_GPU=1
if [ "$ON_GPU" = 1 ] && ls .whl/*.whl >/dev/null 2>&1; then  # the GPU image (Python 3.12) lacks these
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 3; }
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
       TRANSFORMERS_NO_ADVISORY_WARNINGS=1
PY=python3
[ "$ON_GPU" = 0 ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
[ "$ON_GPU" = 1 ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, transformers, nnsight, transformer_lens, trl, peft, datasets; print('torch', torch.__version__, 'transformers', transformers.__version__, 'nnsight', nnsight.__version__, 'trl', trl.__version__, 'peft', peft.__version__)" 2>&1 | tail -3
$PY bench/gpu_check.py --out "$OUT/gpu_check.json" "$@" 2>&1 | grep -v -i -E "warn|it/s\]" | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
