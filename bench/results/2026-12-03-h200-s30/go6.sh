#!/usr/bin/env bash
# session 30 call 6: the GPU tests of what channels-last small convolutions reach beyond training (prediction, int8),
# and the timed-choices rename (CublasLtChoicesGpuTest), on the final code
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 100 "$B/run.sh" test --select-class dev.kiln.cuda.PredictorGpuTest --select-class dev.kiln.cuda.QuantizedGpuTest --select-class dev.kiln.cuda.CublasLtChoicesGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed|aborted|skipped)|✘" $R/tests.txt | head -12; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>" | head -8
