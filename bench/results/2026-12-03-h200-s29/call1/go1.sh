#!/usr/bin/env bash
# session 29 call 1: the twenty-eighth session's unrun change (ReLU with autograd stays with the epilogue kernel; the
# cuBLASLt ReLU epilogue's NaN probe; float16 1x1 products), cuBLAS's float32 emulation probe, then the whole GPU suite
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest --select-class dev.kiln.cuda.ReluNaNGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed)|✘" $R/tests.txt | head -20; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>" | head -10
timeout 120 python3 "$B/ref/cublas_fp32_probe.py" > $R/probe.txt 2> $R/probe.log; echo "probe exit $? at $(( $(date +%s)-T0 ))s"
cat $R/probe.txt | head -12; tail -5 $R/probe.log
(cd $R && tar czf first.tgz --exclude='*.tgz' *)
L=$(( 570 - ($(date +%s) - T0) )); echo "suite gets ${L}s"
NCCL_NVLS_ENABLE=0 timeout $L "$B/run.sh" test --select-package dev.kiln.cuda --select-class dev.kiln.train.TrainerGraphGpuTest > $R/suite.txt 2>&1; echo "suite exit $?"
grep -E "tests (successful|failed|aborted|skipped)|✘" $R/suite.txt | head -30
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls
