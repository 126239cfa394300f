#!/usr/bin/env bash
# Call 1: the new ops' GPU tests, then the whole GPU suite, then sorting/cumsum beside PyTorch.
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$O/gpu.txt"
"$B/run.sh" test --select-class dev.kiln.cuda.SortingGpuTest --select-class dev.kiln.cuda.ReductionsGpuTest --select-method dev.kiln.cuda.ElementwiseGpuTest#unaryOpsForwardAndBackward > "$O/new-ops.txt" 2>&1; echo "new ops exit $?"
grep -E "tests (successful|failed)|✘|Exception|expected" "$O/new-ops.txt" | head -30
"$B/run.sh" bench sorting > "$O/kiln-sorting.txt" 2>&1; echo "kiln bench exit $?"; cat "$O/kiln-sorting.txt" | tail -8
python3 "$B/ref/torch_sorting.py" > "$O/torch-sorting.txt" 2>&1; echo "torch exit $?"; cat "$O/torch-sorting.txt"
"$B/run.sh" test > "$O/gpu-tests.txt" 2>&1; echo "gpu tests exit $?"
grep -E "tests (successful|failed|skipped|aborted)|✘" "$O/gpu-tests.txt" | head -40
