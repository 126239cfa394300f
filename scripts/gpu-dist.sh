#!/usr/bin/env bash
# Data parallel checks on the 2-GPU machine, in one call (prepare the bundle with scripts/gpu-check.sh --prepare DIR):
#   DIR/gpu-dist.sh DIR     NcclGpuTest and DataParallelGpuTest (two processes over NCCL: same parameters as one GPU;
#                           a dead rank ends the job), with NCCL_NVLS_ENABLE=0 as every NCCL process must have.
set -u
B=$(cd "${1:?usage: gpu-dist.sh BUNDLE_DIR}" && pwd)
O=${OUT:-/tmp/kiln-out}
mkdir -p "$O"
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader | tee "$O/gpus.txt"
timeout 400 "$B/run.sh" test --select-class dev.kiln.cuda.NcclGpuTest --select-class dev.kiln.cuda.DataParallelGpuTest > "$O/dist-tests.txt" 2>&1
echo "dist tests exit $?"
grep -E "tests (successful|failed|skipped|aborted)|=>|MethodSource" "$O/dist-tests.txt" | head -20
