#!/usr/bin/env bash
# session 36 call 7: the review's refactor (Tc32Loads' cp.async through common.cuh's mma_cp16_at, which mma_cp16 now
# calls: matmul.cu's and attention.cu's CUBINs differ from call 5's) beside l1 in the probe; Matmul, Attention,
# Transformer, LM, Recurrent GPU tests; GPT/LSTM fp32 beside torch.compile in the same call
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
cd $B/probe; PROBE_SHAPES=tn:1152:16384:384,tn:384:16384:1536,nn:1536:16384:384,nt:384:1536:16384,tn:4096:4096:4096,nn:200:300:100,tt:260:36:4100 \
  PYTHONUNBUFFERED=1 timeout 60 python3 wg32_probe.py l1=l1.cubin f2=f2.cubin > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"; cut -c1-330 $R/probe.txt; cd - >/dev/null
timeout 200 "$B/run.sh" test --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.AttentionGpuTest --select-class dev.kiln.cuda.TransformerGpuTest \
  --select-class dev.kiln.cuda.LanguageModelGpuTest --select-class dev.kiln.cuda.RecurrentGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -16
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32
timeout 90 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln.log; echo "kiln bench exit $? at $(el)s"
PYTHONUNBUFFERED=1 timeout 120 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
