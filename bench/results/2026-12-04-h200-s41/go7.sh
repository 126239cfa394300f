#!/usr/bin/env bash
# session 41 call 7: the review's mend (sigmoid / tanh formulas in one place, the fused LSTM's task loops through one
# helper): the recurrent, elementwise and language-model GPU tests against the CPU, and the CPU recurrent / fast-path
# tests on the host
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 200 "$B/run.sh" test $(sel dev.kiln.cuda.RecurrentGpuTest dev.kiln.cuda.ElementwiseGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.TransformerGpuTest dev.kiln.cpu.RecurrentCpuTest dev.kiln.ops.RecurrentGradTest dev.kiln.ops.Float32FastPathTest dev.kiln.cpu.JitTierDeterminismTest dev.kiln.models.CharLSTMTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
