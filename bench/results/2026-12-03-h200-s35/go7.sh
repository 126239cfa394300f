#!/usr/bin/env bash
# session 35 call 7: layer norm's float32 rows of 128·k held in registers (layer_norm_*_v_f32): Normalization,
# Transformer, LM GPU tests; GPT/LSTM fp32 beside torch.compile in the same call; then Kiln's per-op profile of the
# GPT fp32 step (prof/)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 150 "$B/run.sh" test --select-class dev.kiln.cuda.NormalizationGpuTest --select-class dev.kiln.cuda.TransformerGpuTest \
  --select-class dev.kiln.cuda.LanguageModelGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -16
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32
timeout 90 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln.log; echo "kiln bench exit $? at $(el)s"
PYTHONUNBUFFERED=1 timeout 120 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
timeout 90 "$B/run.sh" kiln bench --device cuda --only gpt_6L384_T256_b64_fp32 --json --profile $R/prof > $R/kiln-prof.json 2> $R/kiln-prof.log; echo "profile exit $? at $(el)s"
head -30 $R/prof/gpt_6L384_T256_b64_fp32.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
