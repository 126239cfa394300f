#!/usr/bin/env bash
# call 8 (the budget's last): cuDNN attention's tests (forward and backward counted), then its rows with and without cuDNN
# beside PyTorch, then the GPT bf16 workload beside torch_ref.py (eager)
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest --select-class dev.kiln.cuda.TransformerGpuTest > $R/att-tests.txt 2>&1; echo "test exit $?"
grep -E "tests (successful|failed)|✘|cuDNN took" $R/att-tests.txt | head
"$B/run.sh" kiln bench --device cuda --json --only attention_b > $R/kiln-att.json 2> $R/kiln-att.log; echo "bench exit $?"; grep -E "bench:.*bf16_fwd" $R/kiln-att.log
KILN_CUDNN=0 "$B/run.sh" kiln bench --device cuda --json --only attention_b > $R/kiln-att-kernels.json 2> $R/kiln-att-k.log; grep "bench:.*bf16_fwd" $R/kiln-att-k.log
python3 "$B/ref/torch_attention.py" > $R/torch-att.json 2>&1; cat $R/torch-att.json
K=gpt_6L384_T256_b64_bf16
"$B/run.sh" kiln bench --device cuda --only $K --cuda-graphs --json > $R/kiln-gpt.json 2> $R/kiln-gpt.log; echo "kiln gpt exit $?"
python3 "$B/ref/torch_ref.py" --only $K > $R/torch-gpt.json 2> $R/torch-gpt.log; echo "torch exit $?"
python3 "$B/ref/compare.py" $R/kiln-gpt.json $R/torch-gpt.json | tee $R/compare-gpt.txt
