#!/usr/bin/env bash
# Call 2: segmented cumsum and the top-k path: their GPU tests, then sorting/cumsum beside PyTorch.
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
export NCCL_NVLS_ENABLE=0
"$B/run.sh" test --select-class dev.kiln.cuda.SortingGpuTest --select-class dev.kiln.cuda.ReductionsGpuTest --select-class dev.kiln.cuda.NormalizationGpuTest --select-class dev.kiln.cuda.LossesGpuTest --select-class dev.kiln.cuda.ElementwiseGpuTest > "$O/new-ops.txt" 2>&1; echo "new ops exit $?"
grep -E "tests (successful|failed)|✘|Exception|expected" "$O/new-ops.txt" | head -30
"$B/run.sh" bench sorting > "$O/kiln-sorting.txt" 2>&1; echo "kiln bench exit $?"; tail -7 "$O/kiln-sorting.txt"
python3 "$B/ref/torch_sorting.py" > "$O/torch-sorting.txt" 2>&1; echo "torch exit $?"; cat "$O/torch-sorting.txt"
