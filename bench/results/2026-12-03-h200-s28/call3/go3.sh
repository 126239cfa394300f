#!/usr/bin/env bash
# session 28 call 3: 1x1 stride-1 channels-last convolutions with an epilogue as one cuBLASLt product (bias, residual as
# C, ReLU in its epilogue) - the covering GPU tests, the inference rows beside torch_infer.py, Nsight Compute over one
# resnet50 b256 prediction, then the whole GPU suite with the time left
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest --select-class dev.kiln.cuda.PredictorGpuTest --select-class dev.kiln.cuda.MatmulGpuTest \
  > $R/tests.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed)|✘" $R/tests.txt | head -20; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>" | head -10
"$B/run.sh" kiln bench --device cuda --only infer_resnet18,infer_resnet50 --json > $R/kiln-infer.json 2> $R/kiln-infer.log; echo "kiln infer exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ref/torch_infer.py" --only resnet18,resnet50 --no-ort > $R/torch-infer.json 2> $R/torch-infer.log; echo "torch infer exit $? at $(( $(date +%s)-T0 ))s"
cat $R/kiln-infer.json $R/torch-infer.json
(cd $R && tar czf first.tgz --exclude='*.tgz' *)
timeout 150 /usr/local/cuda/bin/ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv \
  "$B/run.sh" bench infer-resnet50 > $R/ncu.csv 2> $R/ncu.log; echo "ncu exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ncu_infer.py" $R/ncu.csv "Kiln resnet50 b256 fp32 prediction" > $R/ncu-infer.txt 2>&1; head -16 $R/ncu-infer.txt; gzip $R/ncu.csv
(cd $R && tar czf second.tgz --exclude='*.tgz' *)
L=$(( 585 - ($(date +%s) - T0) )); echo "suite gets ${L}s"
NCCL_NVLS_ENABLE=0 timeout $L "$B/run.sh" test --select-package dev.kiln.cuda --select-class dev.kiln.train.TrainerGraphGpuTest > $R/suite.txt 2>&1; echo "suite exit $?"
grep -E "tests (successful|failed|aborted|skipped)|✘" $R/suite.txt | head -30
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls
