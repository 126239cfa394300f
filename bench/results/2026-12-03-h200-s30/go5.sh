#!/usr/bin/env bash
# session 30 call 5: dropout keeps channels-last (mask drawn at the contiguous index): GPU tests; kiln bench channels-last
# on / off beside torch.compile (same call); the fmnist rows; kiln train cnn-bn and resnet-small (default: channels-last)
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 150 "$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest --select-class dev.kiln.cuda.DropoutGpuTest --select-class dev.kiln.cuda.GraphGpuTest --select-class dev.kiln.cuda.ElementwiseGpuTest --select-class dev.kiln.cuda.PoolingGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed|aborted|skipped)|✘" $R/tests.txt | head -12; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>" | head -8
W=cnn_b,cifar_cnn_b
for cl in on off; do
  timeout 150 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json --channels-last $cl > $R/kiln-$cl.json 2> $R/kiln-$cl.log; echo "kiln bench $cl exit $? at $(( $(date +%s)-T0 ))s"
done
PYTHONUNBUFFERED=1 timeout 240 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(( $(date +%s)-T0 ))s"
for cl in on off; do echo "== channels-last $cl"; python3 "$B/ref/compare.py" $R/kiln-$cl.json $R/torch.json | tee $R/compare-$cl.txt; done
timeout 100 "$B/run.sh" kiln bench --device cuda --only fmnist --cuda-graphs --json --data "$B/fmnist" > $R/kiln-fmnist.json 2> $R/kiln-fmnist.log; echo "kiln fmnist exit $? at $(( $(date +%s)-T0 ))s"
grep -E "to92|10ep" $R/kiln-fmnist.json
for m in cnn-bn resnet-small; do
  timeout 60 "$B/run.sh" kiln train --model $m --device cuda --data "$B/fmnist" --epochs 2 --limit 20000 --out /tmp/t-$m > $R/train-$m.txt 2>&1; echo "kiln train $m exit $?"; grep -E "epoch 2/" $R/train-$m.txt
done
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for k in cifar_cnn_b1024_bf16 cifar_cnn_b1024_fp32; do
  [ $(( $(date +%s)-T0 )) -gt 420 ] && { echo "no time left for ncu $k"; continue; }
  timeout 90 "$NCU" --clock-control none --cache-control none --metrics gpu__time_duration.sum --launch-skip 2500 --launch-count 250 --csv \
     "$B/run.sh" kiln bench --device cuda --only $k --json > $R/ncu-$k.csv 2> $R/ncu-$k.log; echo "ncu $k exit $? at $(( $(date +%s)-T0 ))s"
  python3 "$B/ncu_step.py" $R/ncu-$k.csv "Kiln $k channels-last" > $R/ncu-$k.txt 2>&1; head -16 $R/ncu-$k.txt; gzip $R/ncu-$k.csv
done
echo "done at $(( $(date +%s)-T0 ))s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
