#!/usr/bin/env bash
# session 34 call 6: call 5's code with gemm_wg32's launch given the four stages' shared memory (call 5 launched it with
# three stages' worth: an illegal address that failed the suite from MatmulGpuTest on). The product tests first, then the
# GPT and LSTM fp32 rows beside torch.compile, then the whole GPU suite for as long as the budget allows
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 100 "$B/run.sh" test --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.ElementwiseGpuTest \
  --select-class dev.kiln.cuda.TransformerGpuTest --select-class dev.kiln.cuda.LanguageModelGpuTest > $R/tests1.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests1.txt; grep -A8 "✘" $R/tests1.txt | grep -E "Exception|expected|Error|=>|✘" | head -16
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32
KILN_LOG_LEVEL=debug timeout 45 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln-debug.log; echo "kiln bench exit $? at $(el)s"
grep -c "gemm_wg32 .*DGELU" $R/kiln-debug.log; grep -E "gemm_wg32 .*DGELU" $R/kiln-debug.log | sed 's/.*kiln: //' | cut -c1-220 | head -4; grep -v "DEBUG\|cudnn:" $R/kiln-debug.log > $R/kiln.log; gzip $R/kiln-debug.log
PYTHONUNBUFFERED=1 timeout 55 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
NCCL_NVLS_ENABLE=0 timeout ${SUITE_S:-230} "$B/run.sh" test --select-package dev.kiln.cuda --select-class dev.kiln.train.TrainerGraphGpuTest > $R/tests.txt 2>&1; echo "suite exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -16; grep -c "✔" $R/tests.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
