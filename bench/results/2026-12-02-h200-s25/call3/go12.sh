#!/usr/bin/env bash
# session 25 call 3: DGELU epilogue against the composed input gradient (CudaBench gelu-linear), then a second GPT bf16
# sample beside torch_ref.py --compiled
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R; K=gpt_6L384_T256_b64_bf16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" bench gelu-linear > $R/gelu-linear.txt 2>&1; echo "bench exit $?"; grep -i "linearAfter\|error\|exception" $R/gelu-linear.txt
"$B/run.sh" kiln bench --device cuda --only $K --cuda-graphs --json > $R/kiln-gpt.json 2> $R/kiln-gpt.log; echo "kiln gpt exit $?"
python3 "$B/ref/torch_ref.py" --only $K --compiled > $R/torch-gpt.json 2> $R/torch-gpt.log; echo "torch exit $?"
python3 "$B/ref/compare.py" $R/kiln-gpt.json $R/torch-gpt.json | tee $R/compare-gpt.txt
