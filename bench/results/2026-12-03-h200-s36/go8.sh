#!/usr/bin/env bash
# session 36 call 8: the exact GELU's input gradient as gemm_wg32_nn_gelu_backward (the slope in the product's epilogue,
# h loaded before the stores) where the timed search keeps it over the product and the elementwise pass: Matmul,
# Elementwise, Transformer, LM GPU tests; GPT/LSTM fp32 beside torch.compile in the same call (the picks in the debug log)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 150 "$B/run.sh" test --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.ElementwiseGpuTest --select-class dev.kiln.cuda.TransformerGpuTest \
  --select-class dev.kiln.cuda.LanguageModelGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -16
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32
KILN_LOG_LEVEL=debug timeout 90 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln-debug.log; echo "kiln bench exit $? at $(el)s"
grep -E "gemm_wg32_gelu_backward|gemm_wg32 .*m=384, n=16384, k=1536|gemm_wg32 .*m=1536, n=16384, k=384" $R/kiln-debug.log | sed 's/.*kiln: //' | cut -c1-230 | sort | uniq -c
grep -v "DEBUG\|cudnn:" $R/kiln-debug.log > $R/kiln.log; gzip $R/kiln-debug.log
PYTHONUNBUFFERED=1 timeout 120 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
