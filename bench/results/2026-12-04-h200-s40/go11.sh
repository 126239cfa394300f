#!/usr/bin/env bash
# session 40 call 11: the review's mend (one packing of a whole B, kept arrays for the fused LSTM's step-to-step buffers,
# Parallel.fill): the recurrent GPU tests and the CPU recurrent / parallel / kept-array tests on the host's 16 cores,
# then the CPU LSTM with this code and call 1's kiln-core, and PyTorch's
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 120 "$B/run.sh" test $(sel dev.kiln.cuda.RecurrentGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cpu.RecurrentCpuTest dev.kiln.cpu.ParallelTest dev.kiln.cpu.FloatArraysTest dev.kiln.nn.RecurrentLayersTest dev.kiln.models.CharLSTMTest dev.kiln.profile.ProfilerTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
timeout 60 "$B/run.sh" kiln bench --device cpu --only lstm --json > $R/new.json 2> $R/new.log; echo "lstm new exit $? at $(el)s: $(tr -d '\n ' < $R/new.json)"
timeout 60 "$B/kiln-with.sh" "$B/old/kiln-core-old.jar" bench --device cpu --only lstm --json > $R/old.json 2> $R/old.log; echo "lstm old exit $? at $(el)s: $(tr -d '\n ' < $R/old.json)"
PYTHONUNBUFFERED=1 timeout 60 python3 bench/torch_cpu_ref.py seq > $R/torch-seq.txt 2>&1; echo "torch seq exit $? at $(el)s"; grep tok_s $R/torch-seq.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
