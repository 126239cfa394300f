#!/usr/bin/env bash
# session 40 call 7: the profiler timing the steps a sequence op prepares (lstmSteps, stepProducts' function) call by
# call, with device events on CUDA: kiln bench --profile of the GPU and CPU LSTM, ProfilerTest and PipelineGpuTest, the
# recurrent GPU tests once more
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 120 "$B/run.sh" test $(sel dev.kiln.profile.ProfilerTest dev.kiln.cuda.PipelineGpuTest dev.kiln.cuda.RecurrentGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cpu.RecurrentCpuTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
timeout 60 "$B/run.sh" kiln bench --device cuda --only lstm --profile $R/prof-gpu --json > $R/gpu-prof.json 2> $R/gpu-prof.log; echo "gpu profile exit $? at $(el)s: $(tr -d '\n ' < $R/gpu-prof.json)"
for f in $R/prof-gpu/*.txt; do echo "== $f"; head -12 "$f"; done
timeout 60 "$B/run.sh" kiln bench --device cpu --only lstm --profile $R/prof-cpu --json > $R/cpu-prof.json 2> $R/cpu-prof.log; echo "cpu profile exit $? at $(el)s: $(tr -d '\n ' < $R/cpu-prof.json)"
for f in $R/prof-cpu/*.txt; do echo "== $f"; head -10 "$f"; done
echo "done at $(el)s"
cd $R && gzip -f prof-*/*.json 2>/dev/null; tar czf all.tgz --exclude='*.tgz' *
