#!/usr/bin/env bash
# session 28 call 6: the TF32 stem kernel for bfloat16 forwards - ConvolutionGpuTest (bfloat16StemForward), the inference
# rows (float32, bfloat16) beside torch_infer.py --bf16, and resnet18 bf16 training beside torch_ref.py (eager)
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed)|✘" $R/tests.txt | head -20; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>" | head -10
"$B/run.sh" kiln bench --device cuda --only infer_resnet18,infer_resnet50 --json > $R/kiln-infer.json 2> $R/kiln-infer.log; echo "kiln infer exit $? at $(( $(date +%s)-T0 ))s"
"$B/run.sh" kiln bench --device cuda --only resnet18_224_b64_bf16 --cuda-graphs --json > $R/kiln-train.json 2> $R/kiln-train.log; echo "kiln train exit $? at $(( $(date +%s)-T0 ))s"
cat $R/kiln-infer.json $R/kiln-train.json
(cd $R && tar czf first.tgz --exclude='*.tgz' *)
timeout 40 python3 "$B/ref/torch_ref.py" --only resnet18_224_b64_bf16 > $R/torch-train.json 2> $R/torch-train.log; echo "torch train exit $? at $(( $(date +%s)-T0 ))s"
L=$(( 255 - ($(date +%s) - T0) )); echo "torch infer gets ${L}s"
timeout $L python3 "$B/ref/torch_infer.py" --only resnet50,resnet18 --no-ort --bf16 > $R/torch-infer.json 2> $R/torch-infer.log; echo "torch infer exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ref/compare.py" $R/kiln-infer.json $R/torch-infer.json | tee $R/compare-infer.txt
python3 "$B/ref/compare.py" $R/kiln-train.json $R/torch-train.json | tee $R/compare-train.txt
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls
