#!/usr/bin/env bash
# session 35 call 1: gemm_wg32 with the tensor cores' sums run over two tiles (s2: a tile's products overlap the next
# tile's reads and split) beside one tile (s1) and session 34's kernel (v4) in the probe; then Kiln with s2 and the exact
# GELU's slope in the products' epilogue: matmul, elementwise, transformer, LM and LSTM GPU tests, GPT/LSTM fp32 beside
# torch.compile in the same call
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
(cd $B/probe && PYTHONUNBUFFERED=1 timeout 90 python3 wg32_probe.py v4=v4.cubin s1=s1.cubin s2=s2.cubin 2>&1 | tee $R/probe.txt); echo "probe exit $? at $(el)s"
timeout 200 "$B/run.sh" test --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.ElementwiseGpuTest --select-class dev.kiln.cuda.TransformerGpuTest \
  --select-class dev.kiln.cuda.RecurrentGpuTest --select-class dev.kiln.cuda.LanguageModelGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -16
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32
KILN_LOG_LEVEL=debug timeout 90 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln-debug.log; echo "kiln bench exit $? at $(el)s"
grep -E "gemm_wg32 |gemm_tc32 " $R/kiln-debug.log | sed 's/.*kiln: //' | cut -c1-220 | sort | uniq -c | head -30; grep -v "DEBUG\|cudnn:" $R/kiln-debug.log > $R/kiln.log; gzip $R/kiln-debug.log
PYTHONUNBUFFERED=1 timeout 120 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
