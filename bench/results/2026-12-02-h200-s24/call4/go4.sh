#!/usr/bin/env bash
# call 4: attention through cuDNN's fused graphs: tests, attention rows with and without cuDNN beside PyTorch, GPT bf16
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest --select-class dev.kiln.cuda.TransformerGpuTest > $R/tests.txt 2>&1; echo "test exit $?"
grep -E "tests (successful|failed)|✘|=>|cuDNN took|expected|failed:" $R/tests.txt | head -40
"$B/run.sh" kiln bench --device cuda --json --only attention > $R/kiln-att.json 2> $R/kiln-att.log; echo "bench exit $?"; grep -E "bench:|rror" $R/kiln-att.log | head
KILN_CUDNN=0 "$B/run.sh" kiln bench --device cuda --json --only attention > $R/kiln-att-kernels.json 2> $R/kiln-att-kernels.log; echo "bench kernels exit $?"; grep "bench:" $R/kiln-att-kernels.log
python3 "$B/ref/torch_attention.py" > $R/torch-att.json 2>&1; cat $R/torch-att.json
K=gpt_6L384_T256_b64_bf16
"$B/run.sh" kiln bench --device cuda --only $K --cuda-graphs --json > $R/kiln-gpt.json 2> $R/kiln-gpt.log; echo "kiln gpt exit $?"
python3 "$B/ref/torch_ref.py" --only $K --compiled > $R/torch-gpt.json 2> $R/torch-gpt.log; echo "torch exit $?"
python3 "$B/ref/compare.py" $R/kiln-gpt.json $R/torch-gpt.json | tee $R/compare-gpt.txt
