#!/usr/bin/env bash
# call 2: where the GPT bf16 step goes now: kiln bench (graphed) beside torch_ref.py --compiled, Kiln's per-op profile,
# PyTorch's kernels, Nsight Compute over eager steps (one step summed by kernel)
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R; K=gpt_6L384_T256_b64_bf16
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" kiln bench --device cuda --only $K --cuda-graphs --json --profile $R/kiln-prof > $R/kiln.json 2> $R/kiln.log; echo "kiln exit $?"
python3 "$B/ref/torch_ref.py" --only $K --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $?"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
python3 "$B/ref/torch_profile.py" --only $K > $R/torch-profile.txt 2>&1; echo "torch profile exit $?"; head -40 $R/torch-profile.txt
timeout 300 /usr/local/cuda/bin/ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum \
  --launch-skip 3000 --launch-count 1400 --csv "$B/run.sh" kiln bench --device cuda --only $K --json > $R/ncu.csv 2> $R/ncu.log
echo "ncu exit $?"; gzip -k $R/ncu.csv
python3 "$B/ncu_step.py" $R/ncu.csv "Kiln $K eager" | tee $R/ncu-step.txt | head -45
