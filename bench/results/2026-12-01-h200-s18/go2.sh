#!/usr/bin/env bash
# Review commit: CudaBackend.channelsLast / alignedChannelsLast through one copy helper; the classes that use them
B=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p $R
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 500 $B/run.sh test --select-class dev.kiln.cuda.PoolingGpuTest --select-class dev.kiln.cuda.NormalizationGpuTest \
  --select-class dev.kiln.cuda.ConvolutionGpuTest --select-class dev.kiln.cuda.ReluNaNGpuTest --select-class dev.kiln.cuda.GraphGpuTest \
  --select-class dev.kiln.train.TrainerGraphGpuTest > $R/gpu-tests.txt 2>&1; echo "gpu tests exit $?"
grep -E "tests (successful|failed|skipped|aborted)" $R/gpu-tests.txt
grep -E "MethodSource|=>" $R/gpu-tests.txt | head -20
