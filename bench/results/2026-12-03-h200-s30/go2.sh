#!/usr/bin/env bash
# session 30 call 2: the small CNNs channels-last (kiln bench --channels-last on, as kiln train runs them on CUDA) beside
# NCHW (off) and torch.compile, same call; Kiln's kernels for cifar_cnn b1024 bf16 channels-last (ncu)
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
W=cnn_b,cifar_cnn_b
for cl in off on; do
  timeout 150 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json --channels-last $cl > $R/kiln-$cl.json 2> $R/kiln-$cl.log; echo "kiln bench $cl exit $? at $(( $(date +%s)-T0 ))s"
done
PYTHONUNBUFFERED=1 timeout 240 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(( $(date +%s)-T0 ))s"
for cl in off on; do echo "== channels-last $cl"; python3 "$B/ref/compare.py" $R/kiln-$cl.json $R/torch.json | tee $R/compare-$cl.txt; done
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for k in cifar_cnn_b1024_bf16 cnn_b128_bf16; do
  [ $(( $(date +%s)-T0 )) -gt 470 ] && { echo "no time left for ncu $k"; continue; }
  timeout 100 "$NCU" --clock-control none --cache-control none --metrics gpu__time_duration.sum --launch-skip 2500 --launch-count 150 --csv \
     "$B/run.sh" kiln bench --device cuda --only $k --json --channels-last on > $R/ncu-$k.csv 2> $R/ncu-$k.log; echo "ncu $k exit $? at $(( $(date +%s)-T0 ))s"
  python3 "$B/ncu_step.py" $R/ncu-$k.csv "Kiln $k channels-last" > $R/ncu-$k.txt 2>&1; head -24 $R/ncu-$k.txt; gzip $R/ncu-$k.csv
done
echo "done at $(( $(date +%s)-T0 ))s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
