#!/usr/bin/env bash
# session 28 call 4: 16-bit inference (Predictor.Options.withPrecision, kiln predict/serve --precision) - PredictorGpuTest
# and ConvolutionGpuTest, then the inference rows in float32 and bfloat16 beside torch_infer.py --bf16 (eager, torch.compile)
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.PredictorGpuTest --select-class dev.kiln.cuda.ConvolutionGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed)|✘" $R/tests.txt | head -20; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>" | head -10
"$B/run.sh" kiln bench --device cuda --only infer_resnet18,infer_resnet50 --json > $R/kiln-infer.json 2> $R/kiln-infer.log; echo "kiln infer exit $? at $(( $(date +%s)-T0 ))s"
cat $R/kiln-infer.json
(cd $R && tar czf first.tgz --exclude='*.tgz' *)
L=$(( 580 - ($(date +%s) - T0) )); echo "torch gets ${L}s"
timeout $L python3 "$B/ref/torch_infer.py" --only resnet18,resnet50 --no-ort --bf16 > $R/torch-infer.json 2> $R/torch-infer.log; echo "torch infer exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ref/compare.py" $R/kiln-infer.json $R/torch-infer.json | tee $R/compare-infer.txt
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls
