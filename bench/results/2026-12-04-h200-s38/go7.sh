#!/usr/bin/env bash
# session 38 call 7: the review's mend (the CPU cells' last part-vector masked): the GPU tests whose CPU
# reference is that attention, and the CPU tests on the host
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 200 "$B/run.sh" test $(sel dev.kiln.cuda.AttentionGpuTest dev.kiln.cuda.TransformerGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.RecurrentGpuTest dev.kiln.cpu.AttentionF32Test dev.kiln.cpu.JitTierDeterminismTest dev.kiln.cpu.RecurrentCpuTest dev.kiln.cpu.MatmulCpuTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
