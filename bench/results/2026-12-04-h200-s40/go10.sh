#!/usr/bin/env bash
# session 40 call 10: AttentionF32 writing its outputs straight into their tensors (the CPU reference of the attention
# GPU tests): the attention, transformer and language-model GPU tests, the CPU attention tests on the host; then the CPU
# GPT on 16 cores with this kiln-core and call 4's (old/kiln-core-before.jar) in turn, and PyTorch's
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 150 "$B/run.sh" test $(sel dev.kiln.cuda.AttentionGpuTest dev.kiln.cuda.TransformerGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cpu.AttentionF32Test dev.kiln.cpu.JitTierDeterminismTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
for round in 1 2; do
  timeout 60 "$B/run.sh" kiln bench --device cpu --only gpt --json > $R/gpt-new$round.json 2> $R/gpt-new$round.log; echo "gpt new $round exit $? at $(el)s: $(tr -d '\n ' < $R/gpt-new$round.json)"
  timeout 60 "$B/kiln-with.sh" "$B/old/kiln-core-before.jar" bench --device cpu --only gpt --json > $R/gpt-before$round.json 2> $R/gpt-before$round.log; echo "gpt before $round exit $? at $(el)s: $(tr -d '\n ' < $R/gpt-before$round.json)"
done
left=$(( 560 - $(date +%s) + T0 ))
[ $left -gt 40 ] && { PYTHONUNBUFFERED=1 timeout $left python3 bench/torch_cpu_ref.py seq > $R/torch-seq.txt 2>&1; echo "torch seq exit $? at $(el)s"; grep tok_s $R/torch-seq.txt; }
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
