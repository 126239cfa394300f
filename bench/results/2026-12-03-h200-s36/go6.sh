#!/usr/bin/env bash
# session 36 call 6: where the GPT fp32 step's GPU time goes with the final kernels, kernel by kernel (Nsight Compute's
# gpu__time_duration over two eager steps; bench/ncu_step.py cuts one step at the optimizer's kernels)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1); echo "ncu: $NCU"
timeout 220 "$NCU" --clock-control none --cache-control none --metrics gpu__time_duration.sum --launch-skip 3000 --launch-count 1200 --csv \
    "$B/run.sh" kiln bench --device cuda --only gpt_6L384_T256_b64_fp32 --json > $R/ncu-gpt-fp32.csv 2> $R/ncu.log; echo "ncu exit $? at $(el)s"
python3 "$B/ncu_step.py" $R/ncu-gpt-fp32.csv "Kiln gpt fp32" > $R/ncu-gpt-fp32.txt 2>&1; head -40 $R/ncu-gpt-fp32.txt
gzip $R/ncu-gpt-fp32.csv
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
