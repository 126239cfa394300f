#!/usr/bin/env bash
# session 38 call 4: call 3 plus columnsSharingA (a column split packs A once for all threads) and the A packing lane interleave at 512 bits: the GPU tests whose
# CPU references changed, the CPU kernel tests on the host's 16-core Xeon, then where the CPU GPT / LSTM steps go on
# 16 cores (kiln bench --profile) beside PyTorch 2.11 on the same cores
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 150 "$B/run.sh" test $(sel dev.kiln.cuda.MatmulGpuTest dev.kiln.cuda.RecurrentGpuTest dev.kiln.cuda.ConvolutionGpuTest dev.kiln.cpu.RecurrentCpuTest dev.kiln.cpu.MatmulCpuTest dev.kiln.cpu.AttentionF32Test dev.kiln.cpu.Int8GemmTest dev.kiln.ops.RecurrentGradTest dev.kiln.nn.RecurrentLayersTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
timeout 30 "$B/run.sh" kiln devices > $R/devices.txt 2>&1; head -1 $R/devices.txt
timeout 150 "$B/run.sh" kiln bench --device cpu --only lstm,gpt --profile $R/prof --json > $R/kiln-cpu.json 2> $R/kiln-cpu.log; echo "kiln cpu exit $? at $(el)s"; tr -d '\n ' < $R/kiln-cpu.json; echo
for f in $R/prof/*.txt; do echo "== $f"; head -14 "$f"; done
left=$(( 400 - $(date +%s) + T0 ))
[ $left -gt 30 ] && { PYTHONUNBUFFERED=1 timeout $left python3 bench/torch_cpu_ref.py seq > $R/torch-cpu.txt 2>&1; echo "torch cpu exit $? at $(el)s"; cat $R/torch-cpu.txt; }
echo "done at $(el)s"
cd $R && gzip -f prof/*.json 2>/dev/null; tar czf all.tgz --exclude='*.tgz' *
