#!/usr/bin/env bash
# Call 3: the radix-select topk and the composites' GPU tests, sorting/cumsum beside PyTorch, then the whole GPU suite.
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$O/gpu.txt"
"$B/run.sh" test --select-class dev.kiln.cuda.SortingGpuTest > "$O/sorting-tests.txt" 2>&1; echo "sorting tests exit $?"
grep -E "tests (successful|failed)|✘" "$O/sorting-tests.txt" | head -10
"$B/run.sh" bench sorting > "$O/kiln-sorting.txt" 2>&1; echo "kiln bench exit $?"; tail -7 "$O/kiln-sorting.txt"
python3 "$B/ref/torch_sorting.py" > "$O/torch-sorting.txt" 2>&1; echo "torch exit $?"; cat "$O/torch-sorting.txt"
"$B/run.sh" test > "$O/gpu-tests.txt" 2>&1; echo "gpu tests exit $?"
grep -E "tests (successful|failed|skipped|aborted)|✘" "$O/gpu-tests.txt" | head -40
