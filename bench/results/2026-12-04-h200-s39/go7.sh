#!/usr/bin/env bash
# session 39 call 7: the review's mend (Backend's defaults through batchOfOne, which CUDA's LSTM/GRU step products and
# linearAfter's backward use; the CPU's packed step weight from the kept arrays): the GPU tests that run them
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 150 "$B/run.sh" test $(sel dev.kiln.cuda.RecurrentGpuTest dev.kiln.cuda.TransformerGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.MatmulGpuTest dev.kiln.cpu.RecurrentCpuTest dev.kiln.cpu.MatmulCpuTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
