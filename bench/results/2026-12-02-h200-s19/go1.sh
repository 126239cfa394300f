#!/bin/bash
# nineteenth session, call 1: the GPU suite (with DataParallelOneGpuTest), then --gpus past the host's GPUs
B=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p $R
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $R/gpu.txt 2>&1
( time $B/run.sh test --select-class dev.kiln.cuda.DataParallelOneGpuTest ) > $R/dp-one-gpu.txt 2>&1
grep -E "\[dp\]|tests (successful|failed)|✘" $R/dp-one-gpu.txt
( cd $B && tar -xJf fmnist.tar.xz ) 2>/dev/null
$B/run.sh kiln train --gpus 2 --epochs 1 --data $B/fmnist --out /tmp/gpus2 > $R/train-gpus2.txt 2>&1; echo "exit $?" >> $R/train-gpus2.txt
cat $R/train-gpus2.txt | tail -5
( time timeout 420 $B/run.sh test --exclude-classname '.*DataParallelOneGpuTest' ) > $R/gpu-suite.txt 2>&1
grep -E "tests (successful|failed|aborted|skipped)|containers failed|real" $R/gpu-suite.txt
grep -B2 -A8 "✘" $R/gpu-suite.txt | head -60
tar -C $OUT -czf $OUT/r.tgz r
