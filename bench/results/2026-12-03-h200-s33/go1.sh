#!/usr/bin/env bash
# session 33 call 1: gemm_tc32 (float32 as three TF32 tensor-core products) alone against PyTorch's float32 product on the
# GPT's shapes (tile sums promoted to float32 accumulators, and not); MatmulGpuTest, AttentionGpuTest; the GPT and LSTM
# fp32 rows beside torch.compile with the timed choices logged
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
cd $B/probe && { echo "== promoted"; timeout 90 python3 tc32_probe.py matmul.cubin; echo "== not promoted"; timeout 90 python3 tc32_probe.py matmul_nopromote.cubin; } > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"; cd $B
cat $R/probe.txt
timeout 200 "$B/run.sh" test --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.AttentionGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed)|16384 x 128" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32
KILN_LOG_LEVEL=debug timeout 200 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln-debug.log; echo "kiln bench exit $? at $(el)s"
grep gemm_tc32 $R/kiln-debug.log | sort | uniq -c | head -40; grep -v "DEBUG\|cudnn:" $R/kiln-debug.log > $R/kiln.log; gzip $R/kiln-debug.log
PYTHONUNBUFFERED=1 timeout 240 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
