#!/usr/bin/env bash
# call 1: the 128-wide attention kernels against the CPU; attention rows and the GPT beside PyTorch
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest > $R/att-test.txt 2>&1; echo "test exit $?"
grep -E "tests (successful|failed)|✘|=>" $R/att-test.txt | head -30
"$B/run.sh" kiln bench --device cuda --cuda-graphs --json --only attention,gpt > $R/kiln.json 2> $R/kiln.log; echo "bench exit $?"
tail -12 $R/kiln.log
python3 "$B/ref/torch_attention.py" > $R/torch-att.json 2>&1; cat $R/torch-att.json
PYTHONUNBUFFERED=1 python3 "$B/ref/torch_ref.py" --only gpt_6L384_T256_b64 > $R/torch.json 2> $R/torch.log; echo "torch exit $?"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
