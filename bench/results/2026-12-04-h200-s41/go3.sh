#!/usr/bin/env bash
# session 41 call 3: the recurrent cells with each exp in a loop of its own: the recurrent GPU tests (GPU against the
# CPU's cells) and the CPU recurrent tests on the host; then the CPU LSTM with this code and call 1's kiln-core (the
# attention change only), alternating, and PyTorch's; the fused steps probe
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 120 "$B/run.sh" test $(sel dev.kiln.cuda.RecurrentGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cpu.RecurrentCpuTest dev.kiln.ops.RecurrentGradTest dev.kiln.nn.RecurrentLayersTest dev.kiln.models.CharLSTMTest dev.kiln.cpu.JitTierDeterminismTest dev.kiln.profile.ProfilerTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
for r in 1 2 3; do
  timeout 60 "$B/run.sh" kiln bench --device cpu --only lstm --json > $R/new$r.json 2> $R/new$r.log; echo "lstm new exit $? at $(el)s: $(tr -d '\n ' < $R/new$r.json)"
  timeout 60 "$B/kiln-with.sh" "$B/old/kiln-core-attn.jar" bench --device cpu --only lstm --json > $R/old$r.json 2> $R/old$r.log; echo "lstm old exit $? at $(el)s: $(tr -d '\n ' < $R/old$r.json)"
done
PYTHONUNBUFFERED=1 timeout 60 python3 bench/torch_cpu_ref.py seq > $R/torch-seq.txt 2>&1; echo "torch seq exit $? at $(el)s"; grep tok_s $R/torch-seq.txt
timeout 100 "$B/run.sh" kiln bench --device cpu --only lstm --profile $R/prof --json > $R/prof.json 2> $R/prof.log; echo "profile exit $? at $(el)s"; head -8 $R/prof/*.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
