#!/usr/bin/env bash
# session 25 call 1: the cuDNN attention forward patch (docs/unrun) - tests first, attention rows with and without cuDNN
# beside PyTorch, the GPT bf16 workload beside torch_ref.py --compiled (Kiln's per-op profile), then the whole GPU suite
# in whatever time is left
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
left() { echo $(( 575 - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest --select-class dev.kiln.cuda.TransformerGpuTest > $R/att-tests.txt 2>&1; echo "attention tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed)|✘|cuDNN" $R/att-tests.txt | head -20
"$B/run.sh" kiln bench --device cuda --json --only attention > $R/kiln-att.json 2> $R/kiln-att.log; echo "bench exit $?"; grep -E "bench:" $R/kiln-att.log
KILN_CUDNN=0 "$B/run.sh" kiln bench --device cuda --json --only attention_b > $R/kiln-att-kernels.json 2> $R/kiln-att-k.log; grep "bench:" $R/kiln-att-k.log
python3 "$B/ref/torch_attention.py" > $R/torch-att.json 2>&1; cat $R/torch-att.json; echo "at $(( $(date +%s)-T0 ))s"
K=gpt_6L384_T256_b64_bf16
"$B/run.sh" kiln bench --device cuda --only $K --cuda-graphs --json --profile $R/kiln-prof > $R/kiln-gpt.json 2> $R/kiln-gpt.log; echo "kiln gpt exit $?"
python3 "$B/ref/torch_ref.py" --only $K --compiled > $R/torch-gpt.json 2> $R/torch-gpt.log; echo "torch exit $?"
python3 "$B/ref/compare.py" $R/kiln-gpt.json $R/torch-gpt.json | tee $R/compare-gpt.txt; echo "at $(( $(date +%s)-T0 ))s"
(cd $R && tar czf first.tgz --exclude='*.tgz' *)
python3 "$B/ref/resnet_interop.py" /tmp/kiln-interop > $R/interop.txt 2>&1; echo "interop exit $?"
L=$(left); echo "suite gets ${L}s"
NCCL_NVLS_ENABLE=0 KILN_INTEROP_DIR=/tmp/kiln-interop timeout $L "$B/run.sh" test --select-package dev.kiln.cuda --select-class dev.kiln.train.TrainerGraphGpuTest > $R/tests.txt 2>&1; echo "test exit $?"
grep -E "tests (successful|failed|aborted|skipped)|✘" $R/tests.txt | head -30
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls
