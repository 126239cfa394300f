#!/usr/bin/env bash
# Call 1: the radix sort: the sorting tests, the tests not run last session, sorting beside PyTorch (two thresholds
# for the bitonic network), then the whole GPU suite.
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$O/gpu.txt"
"$B/run.sh" test --select-class dev.kiln.cuda.SortingGpuTest --select-class dev.kiln.cuda.ConvolutionGpuTest > "$O/sorting-conv-tests.txt" 2>&1; echo "sorting+conv tests exit $?"
grep -E "tests (successful|failed)|✘" "$O/sorting-conv-tests.txt" | head -20
"$B/run.sh" bench sorting > "$O/kiln-sorting.txt" 2>&1; echo "kiln bench exit $?"; tail -10 "$O/kiln-sorting.txt"
"$B/run.sh" java -Dkiln.sort.small.max=0 dev.kiln.cuda.CudaBench sorting > "$O/kiln-sorting-radix-only.txt" 2>&1; echo "radix-only exit $?"; grep argsort "$O/kiln-sorting-radix-only.txt"
"$B/run.sh" java -Dkiln.sort.small.max=100000000 dev.kiln.cuda.CudaBench sorting > "$O/kiln-sorting-bitonic-max.txt" 2>&1; echo "bitonic-max exit $?"; grep argsort "$O/kiln-sorting-bitonic-max.txt"
python3 "$B/ref/torch_sorting.py" > "$O/torch-sorting.txt" 2>&1; echo "torch exit $?"; cat "$O/torch-sorting.txt"
timeout 300 "$B/run.sh" test > "$O/gpu-tests.txt" 2>&1; echo "gpu tests exit $?"
grep -E "tests (successful|failed|skipped|aborted)|✘" "$O/gpu-tests.txt" | head -40
