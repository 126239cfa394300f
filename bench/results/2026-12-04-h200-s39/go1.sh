#!/usr/bin/env bash
# session 39 call 1: the CPU team (Parallel) and the recurrent step products (B packed once): the GPU tests whose CPU
# code or references changed, then on the host's 16-core Xeon the probe (team / fork-join), kiln bench's GPT and LSTM
# (team, fork-join, no spinning; the team's per-op profile), PyTorch 2.11's ops and steps
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
nproc; lscpu | grep -E "Model name|Thread|Core|Socket|L2|L3" > $R/lscpu.txt; cat $R/lscpu.txt
timeout 150 "$B/run.sh" test $(sel dev.kiln.cuda.RecurrentGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.MatmulGpuTest dev.kiln.cpu.ParallelTest dev.kiln.cpu.MatmulCpuTest dev.kiln.cpu.RecurrentCpuTest dev.kiln.ops.RecurrentGradTest dev.kiln.nn.RecurrentLayersTest dev.kiln.cpu.JitTierDeterminismTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
for o in default false; do timeout 60 "$B/run.sh" java -Dkiln.cpu.team=$o dev.kiln.cpu.ManyCoreProbe > $R/probe-$o.txt 2>&1; echo "probe $o exit $? at $(el)s"; cat $R/probe-$o.txt | grep -v WARN; done
timeout 100 "$B/run.sh" kiln bench --device cpu --only gpt,lstm --profile $R/prof --json > $R/kiln-team.json 2> $R/kiln-team.log; echo "kiln team exit $? at $(el)s"; tr -d '\n ' < $R/kiln-team.json; echo
for f in $R/prof/*.txt; do echo "== $f"; head -16 "$f"; done
for o in "-Dkiln.cpu.team=false" "-Dkiln.cpu.spin.us=0"; do
  n=$(echo $o | tr -dc 'a-z0-9'); JAVA_TOOL_OPTIONS="$o" timeout 80 "$B/run.sh" kiln bench --device cpu --only gpt,lstm --json > $R/kiln-$n.json 2> $R/kiln-$n.log; echo "kiln $o exit $? at $(el)s"; tr -d '\n ' < $R/kiln-$n.json; echo
done
PYTHONUNBUFFERED=1 timeout 100 python3 bench/torch_cpu_ref.py ops > $R/torch-ops.txt 2>&1; echo "torch ops exit $? at $(el)s"; cat $R/torch-ops.txt
left=$(( 560 - $(date +%s) + T0 ))
[ $left -gt 30 ] && { PYTHONUNBUFFERED=1 timeout $left python3 bench/torch_cpu_ref.py seq > $R/torch-seq.txt 2>&1; echo "torch seq exit $? at $(el)s"; cat $R/torch-seq.txt; }
echo "done at $(el)s"
cd $R && gzip -f prof/*.json 2>/dev/null; tar czf all.tgz --exclude='*.tgz' *
