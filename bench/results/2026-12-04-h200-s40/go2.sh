#!/usr/bin/env bash
# session 40 call 2: the fused LSTM steps (Backend.lstmSteps: on the CPU each thread multiplies and activates its own
# hidden units' four gates, one parallel loop a step) and column-major A packed eight k's at a time across the panels:
# the GPU tests whose code or CPU reference changed (CUDA's LSTM takes the composed default), the CPU tests on the host's
# 16 cores, the probe, Kiln's GPT / LSTM steps with this code and with call 1's kiln-core (old/), PyTorch's steps and ops
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 150 "$B/run.sh" test $(sel dev.kiln.cuda.RecurrentGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.MatmulGpuTest dev.kiln.cpu.RecurrentCpuTest dev.kiln.cpu.MatmulCpuTest dev.kiln.cpu.ParallelTest dev.kiln.ops.RecurrentGradTest dev.kiln.nn.RecurrentLayersTest dev.kiln.models.CharLSTMTest dev.kiln.arch.OpTableTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
timeout 60 "$B/run.sh" java dev.kiln.cpu.ManyCoreProbe > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"; grep -v WARN $R/probe.txt
JRE=/tmp/kiln-jre; OLDCP="$B/kiln.jar:$B/old/kiln-core-old.jar$(ls $B/lib/*.jar | grep -v kiln-core | sed 's/^/:/' | tr -d '\n')"
old() { "$JRE/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx16g -XX:+UseG1GC -Xmn1g -cp "$OLDCP" dev.kiln.cli.Main "$@"; }
for round in 1 2; do
  timeout 70 "$B/run.sh" kiln bench --device cpu --only gpt,lstm --json > $R/kiln-new$round.json 2> $R/kiln-new$round.log; echo "kiln new $round exit $? at $(el)s"; tr -d '\n ' < $R/kiln-new$round.json; echo
  timeout 70 old bench --device cpu --only gpt,lstm --json > $R/kiln-old$round.json 2> $R/kiln-old$round.log; echo "kiln old $round exit $? at $(el)s"; tr -d '\n ' < $R/kiln-old$round.json; echo
  PYTHONUNBUFFERED=1 timeout 60 python3 bench/torch_cpu_ref.py seq > $R/torch-seq$round.txt 2>&1; echo "torch seq $round exit $? at $(el)s"; grep tok_s $R/torch-seq$round.txt
done
timeout 70 "$B/run.sh" kiln bench --device cpu --only lstm --profile $R/prof --json > $R/kiln-prof.json 2> $R/kiln-prof.log; echo "kiln profile exit $? at $(el)s"; cat $R/prof/*.txt
PYTHONUNBUFFERED=1 timeout 70 python3 bench/torch_cpu_ref.py ops > $R/torch-ops.txt 2>&1; echo "torch ops exit $? at $(el)s"; cat $R/torch-ops.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
