#!/usr/bin/env bash
# session 41 call 1: the CPU attention reading its operands in place (and its gradients into one buffer), checked
# against the GPU's (AttentionGpuTest and the transformer / language-model GPU tests) and on the host's 16 cores (the
# CPU attention, softmax and matmul tests); then the CPU GPT with this code and the session's first kiln-core,
# alternating, and PyTorch's
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
lscpu > $R/lscpu.txt
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 150 "$B/run.sh" test $(sel dev.kiln.cuda.AttentionGpuTest dev.kiln.cuda.TransformerGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.SoftmaxGpuTest dev.kiln.cpu.AttentionF32Test dev.kiln.cpu.MatmulCpuTest dev.kiln.ops.AttentionGradTest dev.kiln.nn.MultiheadAttentionTest dev.kiln.models.GptTest dev.kiln.cpu.JitTierDeterminismTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
for r in 1 2; do
  timeout 80 "$B/run.sh" kiln bench --device cpu --only gpt --json > $R/new$r.json 2> $R/new$r.log; echo "gpt new exit $? at $(el)s: $(tr -d '\n ' < $R/new$r.json)"
  timeout 80 "$B/kiln-with.sh" "$B/old/kiln-core-old.jar" bench --device cpu --only gpt --json > $R/old$r.json 2> $R/old$r.log; echo "gpt old exit $? at $(el)s: $(tr -d '\n ' < $R/old$r.json)"
done
PYTHONUNBUFFERED=1 timeout 90 python3 bench/torch_cpu_ref.py seq > $R/torch-seq.txt 2>&1; echo "torch seq exit $? at $(el)s"; grep tok_s $R/torch-seq.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
