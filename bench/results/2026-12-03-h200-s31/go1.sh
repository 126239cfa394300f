#!/usr/bin/env bash
# For the next session's first device call (bundle: scripts/gpu-check.sh --prepare DIR, then DIR/go-next.sh DIR):
# the whole GPU suite on the thirtieth session's final code (that session ran its changes' classes and 26 more, not the
# whole suite in one go: ~300 s), then the small CNNs' fp32 rows that still fall short, profiled. If ConvolutionGpuTest
# fails, revert abe0fcf (bias_grad_finish) first.
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
# first the one unrun change (bias_grad_finish a warp a channel, commit abe0fcf): its test, and the CNN rows it moves
timeout 60 "$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest > $R/conv.txt 2>&1; echo "ConvolutionGpuTest exit $?"
grep -E "tests (successful|failed)|✘" $R/conv.txt | head -6
timeout 60 "$B/run.sh" kiln bench --device cuda --only cnn_b,cifar_cnn_b --cuda-graphs --json > $R/kiln.json 2> $R/kiln.log; grep samples_s $R/kiln.json
# the CNN to 92%: two bfloat16 one-cycle recipes added after the device time was spent (goal: under 0.5 s)
timeout 90 "$B/run.sh" kiln bench --device cuda --only fmnist --cuda-graphs --json --data "$B/fmnist" > $R/fmnist.json 2> $R/fmnist.log; grep -E "to92|10ep" $R/fmnist.json
NCCL_NVLS_ENABLE=0 timeout 330 "$B/run.sh" test --select-package dev.kiln.cuda --select-class dev.kiln.train.TrainerGraphGpuTest > $R/suite.txt 2>&1; echo "suite exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed|aborted|skipped)|✘" $R/suite.txt | head -30
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for k in cnn_b1024_fp32 cifar_cnn_b128_fp32; do
  [ $(( $(date +%s)-T0 )) -gt 520 ] && { echo "no time left for ncu $k"; continue; }
  timeout 60 "$NCU" --clock-control none --cache-control none --metrics gpu__time_duration.sum --launch-skip 2500 --launch-count 250 --csv \
     "$B/run.sh" kiln bench --device cuda --only $k --json > $R/ncu-$k.csv 2> $R/ncu-$k.log; echo "ncu $k exit $?"
  python3 "$B/ncu_step.py" $R/ncu-$k.csv "Kiln $k channels-last" > $R/ncu-$k.txt 2>&1; head -16 $R/ncu-$k.txt; gzip $R/ncu-$k.csv
done
cd $R && tar czf all.tgz --exclude='*.tgz' *
