#!/usr/bin/env bash
# session 35 call 4: the probe with the h argument it lacked (calls 1-3 hung or crashed on it): v4 (session 34), k2 (two-tile sums), k1 (final) and the GELU epilogue;
# Kiln with k1 (the slopes in registers before the stores): Matmul, Elementwise, Transformer and LM
# GPU tests, GPT/LSTM fp32 beside torch.compile in the same call
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
ls -la $B/probe
cd $B/probe; PYTHONUNBUFFERED=1 timeout 90 python3 wg32_probe.py v4=v4.cubin k2=k2.cubin k1=k1.cubin > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"; cd - >/dev/null
head -c 6000 $R/probe.txt
CUOBJ=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1); echo "cuobjdump: $CUOBJ"
for v in k1; do [ -n "$CUOBJ" ] && $CUOBJ -sass -fun gemm_wg32_tn $B/probe/$v.cubin 2>&1 | gzip > $R/$v-wg32_tn.sass.gz; done
timeout 150 "$B/run.sh" test --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.ElementwiseGpuTest --select-class dev.kiln.cuda.TransformerGpuTest --select-class dev.kiln.cuda.LanguageModelGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -16
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32
KILN_LOG_LEVEL=debug timeout 90 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln-debug.log; echo "kiln bench exit $? at $(el)s"
grep -E "gemm_wg32 |gemm_tc32 " $R/kiln-debug.log | sed 's/.*kiln: //' | cut -c1-220 | sort | uniq -c | head -30; grep -v "DEBUG\|cudnn:" $R/kiln-debug.log > $R/kiln.log; gzip $R/kiln-debug.log
PYTHONUNBUFFERED=1 timeout 120 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
