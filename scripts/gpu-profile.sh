#!/usr/bin/env bash
# Where the GPU time of the conv-net training steps goes, Kiln beside PyTorch, in one call on the GPU machine:
#   DIR/gpu-profile.sh DIR [WORKLOADS]   (DIR prepared by scripts/gpu-check.sh --prepare DIR; results under $OUT)
# Writes: kiln.json / torch.json / compare.txt (rates), kiln-prof/KEY.txt (Kiln's per-op table, eager steps),
# torch-profile.txt (PyTorch's kernels), ncu-KEY.csv (Kiln's kernels by Nsight Compute) and ncu-KEY.txt (one step of them
# by kernel, bench/ncu_step.py).
set -u
B=$(cd "${1:?usage: gpu-profile.sh BUNDLE_DIR [workloads]}" && pwd)
W=${2:-cnn_b128,cnn_b1024,cifar_cnn_b128,cifar_cnn_b1024}
O=${OUT:-/tmp/kiln-out}
mkdir -p "$O"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$O/gpu.txt"
"$B/run.sh" kiln bench --device cuda --only "$W" --cuda-graphs --json --profile "$O/kiln-prof" > "$O/kiln.json" 2> "$O/kiln-bench.log"
echo "kiln bench exit $?"
PYTHONUNBUFFERED=1 python3 "$B/ref/torch_ref.py" --only "$W" > "$O/torch.json" 2> "$O/torch.log"; echo "torch exit $?"
python3 "$B/ref/compare.py" "$O/kiln.json" "$O/torch.json" | tee "$O/compare.txt"
python3 "$B/ref/torch_profile.py" --only "$W" > "$O/torch-profile.txt" 2>&1; echo "torch profile exit $?"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
if [ -n "$NCU" ] && [ -n "${NCU_KEYS:-}" ]; then
    for k in ${NCU_KEYS//,/ }; do
        timeout 240 "$NCU" --clock-control none --cache-control none --metrics gpu__time_duration.sum \
            --launch-skip "${NCU_SKIP:-2500}" --launch-count "${NCU_COUNT:-250}" --csv \
            "$B/run.sh" kiln bench --device cuda --only "$k" --json > "$O/ncu-$k.csv" 2> "$O/ncu-$k.log"
        echo "ncu $k exit $?"
        python3 "$B/ncu_step.py" "$O/ncu-$k.csv" "Kiln $k" > "$O/ncu-$k.txt" 2>&1 && head -20 "$O/ncu-$k.txt"
    done
fi
