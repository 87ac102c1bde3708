#!/usr/bin/env bash
# GPU readiness in one command (research/bench/gpu_check.py): bf16 training steps and MFU, batched bf16 generation
# (dynamic and static cache), peak memory and bf16-vs-fp32 agreement of the real-size model on one GPU, within
# 8 minutes; writes research/results/gpu_check.json. Extra arguments go to the module (e.g. --trained-model DIR).
set -euo pipefail
cd "$(dirname "$0")/../.."
python=".venv/bin/python"
[ -x "$python" ] || python="python"
exec timeout 480 "$python" -m research.bench.gpu_check "$@"
