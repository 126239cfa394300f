#!/usr/bin/env bash
# session 25 call 4: AttentionGpuTest with gradientsOfLeavesInOtherLayouts (leaves' own layouts for q/k/v gradients)
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest > $R/att-tests.txt 2>&1; echo "attention tests exit $?"
grep -E "tests (successful|failed)|✘|Layouts|expected|off" $R/att-tests.txt | head -30
