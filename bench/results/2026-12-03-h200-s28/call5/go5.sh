#!/usr/bin/env bash
# session 28 call 5: where a resnet18 batch-256 prediction goes in bfloat16 and float32 (Nsight Compute, one prediction
# between marker fills), and resnet50 in bfloat16
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
for M in resnet18-bf16 resnet18 resnet50-bf16; do
  "$B/run.sh" bench infer-$M > $R/bench-$M.txt 2>&1; grep "infer " $R/bench-$M.txt
  timeout 100 /usr/local/cuda/bin/ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv \
    "$B/run.sh" bench infer-$M > $R/ncu-$M.csv 2> $R/ncu-$M.log; echo "ncu $M exit $? at $(( $(date +%s)-T0 ))s"
  python3 "$B/ncu_infer.py" $R/ncu-$M.csv "Kiln $M b256 prediction" > $R/ncu-$M.txt 2>&1; head -14 $R/ncu-$M.txt; gzip $R/ncu-$M.csv
done
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls
