#!/usr/bin/env bash
# Call 5 (final code): the transposed convolution against the CPU, then the whole GPU suite.
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$O/gpu.txt"
"$B/run.sh" test --select-method dev.kiln.cuda.ConvolutionGpuTest#convTranspose2dForwardAndBackward > "$O/conv-transpose.txt" 2>&1; echo "conv transpose exit $?"
grep -E "tests (successful|failed)|✘" "$O/conv-transpose.txt" | head -5
"$B/run.sh" test > "$O/gpu-tests.txt" 2>&1; echo "gpu tests exit $?"
grep -E "tests (successful|failed|skipped|aborted)|✘" "$O/gpu-tests.txt" | head -40
