#!/usr/bin/env bash
# session 38 call 5: the final code (the GRU cell in lanes too, columnsSharingA taken out): the GPU and CPU tests whose
# CPU references or code changed, and the 16-core CPU LSTM / GPT beside PyTorch 2.11 once more
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 150 "$B/run.sh" test $(sel dev.kiln.cuda.RecurrentGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.MatmulGpuTest dev.kiln.cuda.AttentionGpuTest dev.kiln.cuda.TransformerGpuTest dev.kiln.cpu.RecurrentCpuTest dev.kiln.cpu.MatmulCpuTest dev.kiln.cpu.AttentionF32Test dev.kiln.cpu.Int8GemmTest dev.kiln.ops.RecurrentGradTest dev.kiln.nn.RecurrentLayersTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
timeout 150 "$B/run.sh" kiln bench --device cpu --only lstm,gpt,gemm --json > $R/kiln-cpu.json 2> $R/kiln-cpu.log; echo "kiln cpu exit $? at $(el)s"; tr -d '\n ' < $R/kiln-cpu.json; echo
PYTHONUNBUFFERED=1 timeout 120 python3 bench/torch_cpu_ref.py seq > $R/torch-cpu.txt 2>&1; echo "torch cpu exit $? at $(el)s"; cat $R/torch-cpu.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
