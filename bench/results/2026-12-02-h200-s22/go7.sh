#!/usr/bin/env bash
# Call 7: the look-back sleeps while a tile it waits on has not published: the sorting tests, sorting beside PyTorch,
# one key pass under Nsight Compute, then the whole GPU suite.
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$O/gpu.txt"
"$B/run.sh" test --select-class dev.kiln.cuda.SortingGpuTest > "$O/sorting-tests.txt" 2>&1; echo "sorting tests exit $?"
grep -E "tests (successful|failed)|✘|expected" "$O/sorting-tests.txt" | head -20
{ "$B/run.sh" bench sorting 2>&1 | grep -E "argsort|topk|cumsum|Exception|at dev"; echo "== PyTorch"; python3 "$B/ref/torch_sorting.py" 2>&1; } > "$O/sorting-bench.txt"; cat "$O/sorting-bench.txt"
timeout 200 /usr/local/cuda/bin/ncu --kernel-name regex:radix_key --launch-skip 6 --launch-count 1 --section SpeedOfLight --section LaunchStats --section WarpStateStats --section InstructionStats \
  --target-processes all "$B/run.sh" bench argsort-flat > "$O/ncu-key-pass.txt" 2>&1
grep -E "Duration|Executed Instructions |Warp Cycles Per Issued|Memory Throughput|DRAM Throughput" "$O/ncu-key-pass.txt"
timeout 330 "$B/run.sh" test > "$O/gpu-tests.txt" 2>&1; echo "gpu tests exit $?"
grep -E "tests (successful|failed|skipped|aborted)|✘" "$O/gpu-tests.txt" | head -40
