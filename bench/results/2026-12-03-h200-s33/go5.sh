#!/usr/bin/env bash
# session 33 call 5: the final gemm_tc32 (call 4's r_perm0 with 36-float tile rows): the whole GPU suite, then, time
# allowing, the GPT and LSTM fp32 rows beside torch.compile
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
NCCL_NVLS_ENABLE=0 timeout 540 "$B/run.sh" test --select-package dev.kiln.cuda --select-class dev.kiln.train.TrainerGraphGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -16
if [ $(el) -lt 470 ]; then
  W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32
  timeout 50 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln.log; echo "kiln bench exit $? at $(el)s"
  PYTHONUNBUFFERED=1 timeout 60 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
  python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
fi
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
