#!/usr/bin/env bash
# Call 6: radix passes as three kernels by kind (first, key, row), 32-bit indices, starts computed once: the sorting
# tests, then sorting beside PyTorch, then Nsight Compute's duration of one key pass of the 2^24 argsort.
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
"$B/run.sh" test --select-class dev.kiln.cuda.SortingGpuTest > "$O/sorting-tests.txt" 2>&1; echo "sorting tests exit $?"
grep -E "tests (successful|failed)|✘|expected" "$O/sorting-tests.txt" | head -20
{ "$B/run.sh" bench sorting 2>&1 | grep -E "argsort|topk|cumsum|Exception|at dev"; echo "== PyTorch"; python3 "$B/ref/torch_sorting.py" 2>&1; } > "$O/sorting-bench.txt"; cat "$O/sorting-bench.txt"
timeout 200 /usr/local/cuda/bin/ncu --kernel-name regex:radix_key --launch-skip 6 --launch-count 1 --section SpeedOfLight --section LaunchStats --section WarpStateStats --section InstructionStats \
  --target-processes all "$B/run.sh" bench argsort-flat > "$O/ncu-key-pass.txt" 2>&1
grep -E "Duration|Executed Instructions |Registers Per|Warp Cycles Per Issued|Memory Throughput|DRAM Throughput" "$O/ncu-key-pass.txt"
