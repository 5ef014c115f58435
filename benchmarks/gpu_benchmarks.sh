#!/usr/bin/env bash
# On a machine with CUDA: the CUDA-vs-CPU tests, attribution speed at 128 px with the batch size swept,
# the LIME / SHAP engine comparison, and per-method time for the CelebAMask-HQ config's models;
# GPU utilisation sampled by nvidia-smi all along. Everything goes to $OUT (default gpu-benchmarks/).
#   bash benchmarks/gpu_benchmarks.sh [rows]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-benchmarks}
ROWS=${1:-32}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -lms 500 > "$OUT/smi.csv" &
SMI=$!
FACEXAI_GPU_REPORT="$OUT/gpu_report.json" timeout 180 python3 -m pytest -q -n 0 -m gpu tests/test_gpu.py -p no:cacheprovider \
    2>&1 | tee "$OUT/gpu_tests.log" | tail -4
for b in 64 256 1024; do
    timeout 120 python3 benchmarks/method_cost.py --device cuda --size 128 --rows "$ROWS" --batch "$b" --no-engines
done 2>&1 | tee "$OUT/attribution_sweep.txt"
timeout 150 python3 benchmarks/method_cost.py --device cuda --size 128 --rows "$ROWS" --batch 256 --only gradcam \
    2>&1 | tee "$OUT/engines.txt"
timeout 200 python3 benchmarks/method_time_estimate.py --config config/celebamask-hq.yaml --rows "$ROWS" --device cuda \
    2>&1 | tee "$OUT/estimate.txt"
kill $SMI
