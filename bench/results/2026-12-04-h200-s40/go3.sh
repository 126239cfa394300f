#!/usr/bin/env bash
# session 40 call 3: the fused LSTM steps writing each step's h (backward: dGates) in the GEMM's packed layout for the
# next step. The GPU and CPU tests of the recurrent layers (CUDA takes the composed default), the probe, then the CPU
# LSTM / GPT on the host's 16 cores with three kiln-core builds in turn: this one, call 2's (fused, A packed by each
# thread: old/kiln-core-fused.jar) and call 1's (step products, then the cell: old/kiln-core-old.jar), and PyTorch's
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 150 "$B/run.sh" test $(sel dev.kiln.cuda.RecurrentGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.MatmulGpuTest dev.kiln.cpu.RecurrentCpuTest dev.kiln.cpu.MatmulCpuTest dev.kiln.cpu.ParallelTest dev.kiln.ops.RecurrentGradTest dev.kiln.nn.RecurrentLayersTest dev.kiln.models.CharLSTMTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
timeout 60 "$B/run.sh" java dev.kiln.cpu.ManyCoreProbe > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"; grep -E "lstm|loop" $R/probe.txt
for round in 1 2; do
  timeout 60 "$B/run.sh" kiln bench --device cpu --only lstm --json > $R/kiln-new$round.json 2> $R/kiln-new$round.log; echo "new $round exit $? at $(el)s: $(tr -d '\n ' < $R/kiln-new$round.json)"
  timeout 60 "$B/kiln-with.sh" "$B/old/kiln-core-fused.jar" bench --device cpu --only lstm --json > $R/kiln-fused$round.json 2> $R/kiln-fused$round.log; echo "fused $round exit $? at $(el)s: $(tr -d '\n ' < $R/kiln-fused$round.json)"
  timeout 60 "$B/kiln-with.sh" "$B/old/kiln-core-old.jar" bench --device cpu --only lstm --json > $R/kiln-old$round.json 2> $R/kiln-old$round.log; echo "old $round exit $? at $(el)s: $(tr -d '\n ' < $R/kiln-old$round.json)"
  PYTHONUNBUFFERED=1 timeout 60 python3 bench/torch_cpu_ref.py seq > $R/torch-seq$round.txt 2>&1; echo "torch seq $round exit $? at $(el)s"; grep tok_s $R/torch-seq$round.txt
done
timeout 60 "$B/run.sh" kiln bench --device cpu --only gpt --json > $R/kiln-gpt.json 2> $R/kiln-gpt.log; echo "gpt new exit $? at $(el)s: $(tr -d '\n ' < $R/kiln-gpt.json)"
timeout 60 "$B/kiln-with.sh" "$B/old/kiln-core-old.jar" bench --device cpu --only gpt --json > $R/kiln-gpt-old.json 2> $R/kiln-gpt-old.log; echo "gpt old exit $? at $(el)s: $(tr -d '\n ' < $R/kiln-gpt-old.json)"
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
