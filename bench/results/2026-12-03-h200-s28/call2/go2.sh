#!/usr/bin/env bash
# session 28 call 2: the convolution epilogue with a residual (bias + shortcut + ReLU in one pass, channels-last 16-byte
# kernels; folded ResNet blocks end in it) and float32 attention's (heads, tiles) grid - their GPU tests, the inference
# rows beside torch_infer.py (eager and torch.compile), Nsight Compute over one resnet50 b256 prediction, then the
# attention and GPT fp32 rows beside PyTorch
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest --select-class dev.kiln.cuda.PredictorGpuTest --select-class dev.kiln.cuda.AttentionGpuTest \
  --select-class dev.kiln.cuda.TransformerGpuTest --select-class dev.kiln.cuda.QuantizedGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed)|✘" $R/tests.txt | head -20; grep -B2 -A12 "✘" $R/tests.txt | grep -E "Exception|expected|Error" | head -10
"$B/run.sh" kiln bench --device cuda --only infer_resnet18,infer_resnet50 --json > $R/kiln-infer.json 2> $R/kiln-infer.log; echo "kiln infer exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ref/torch_infer.py" --only resnet18,resnet50 --no-ort > $R/torch-infer.json 2> $R/torch-infer.log; echo "torch infer exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ref/compare.py" $R/kiln-infer.json $R/torch-infer.json > $R/compare-infer.txt 2>&1; cat $R/kiln-infer.json $R/torch-infer.json
(cd $R && tar czf first.tgz --exclude='*.tgz' *)
timeout 150 /usr/local/cuda/bin/ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv \
  "$B/run.sh" bench infer-resnet50 > $R/ncu.csv 2> $R/ncu.log; echo "ncu exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ncu_infer.py" $R/ncu.csv "Kiln resnet50 b256 fp32 prediction" > $R/ncu-infer.txt 2>&1; head -20 $R/ncu-infer.txt; gzip $R/ncu.csv
(cd $R && tar czf second.tgz --exclude='*.tgz' *)
"$B/run.sh" kiln bench --device cuda --only attention_b64 --json > $R/kiln-att.json 2> $R/kiln-att.log; echo "kiln att exit $?"; cat $R/kiln-att.json
python3 "$B/ref/torch_attention.py" > $R/torch-att.json 2> $R/torch-att.log; echo "torch att exit $?"; cat $R/torch-att.json
K=gpt_6L384_T256_b64_fp32; L=$(( 580 - ($(date +%s) - T0) )); echo "gpt gets ${L}s"
timeout $L "$B/run.sh" kiln bench --device cuda --only $K --cuda-graphs --json > $R/kiln-gpt.json 2> $R/kiln-gpt.log; echo "kiln gpt exit $? at $(( $(date +%s)-T0 ))s"
L=$(( 585 - ($(date +%s) - T0) )); timeout $L python3 "$B/ref/torch_ref.py" --only $K --compiled > $R/torch-gpt.json 2> $R/torch-gpt.log; echo "torch exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ref/compare.py" $R/kiln-gpt.json $R/torch-gpt.json | tee $R/compare-gpt.txt
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls
