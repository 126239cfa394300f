#!/usr/bin/env bash
# session 35 call 2: the probe again (call 1's printed nothing), with its exit status, and the SASS of s1/s2's gemm_wg32_tn;
# Kiln with s1 (one tile a float32 sum, as session 34) and the exact GELU's slope in the epilogue: Matmul and Elementwise
# GPU tests, GPT/LSTM fp32 beside torch.compile in the same call
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
ls -la $B/probe
cd $B/probe; PYTHONUNBUFFERED=1 timeout 100 python3 wg32_probe.py v4=v4.cubin s1=s1.cubin s2=s2.cubin > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"; cd - >/dev/null
head -c 6000 $R/probe.txt
CUOBJ=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1); echo "cuobjdump: $CUOBJ"
for v in s1 s2; do [ -n "$CUOBJ" ] && $CUOBJ -sass -fun gemm_wg32_tn $B/probe/$v.cubin 2>&1 | gzip > $R/$v-wg32_tn.sass.gz; done
timeout 150 "$B/run.sh" test --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.ElementwiseGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -16
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32
KILN_LOG_LEVEL=debug timeout 90 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln-debug.log; echo "kiln bench exit $? at $(el)s"
grep -E "gemm_wg32 |gemm_tc32 " $R/kiln-debug.log | sed 's/.*kiln: //' | cut -c1-220 | sort | uniq -c | head -30; grep -v "DEBUG\|cudnn:" $R/kiln-debug.log > $R/kiln.log; gzip $R/kiln-debug.log
PYTHONUNBUFFERED=1 timeout 120 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
