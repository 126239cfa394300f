#!/usr/bin/env bash
# session 32 call 2: conv_tap_wgrad (the 3x3 32/64-channel weight gradient on TF32 tensor cores) tested, the small
# CNNs beside torch.compile (same call), their steps profiled
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 120 "$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest > $R/conv.txt 2>&1; echo "ConvolutionGpuTest exit $? at $(el)s"
grep -E "tests (successful|failed)" $R/conv.txt; grep -A8 "✘" $R/conv.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
W=cnn_b,cifar_cnn_b
timeout 120 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln.log; echo "kiln bench exit $? at $(el)s"
KILN_SMALL_CONV=0 timeout 90 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln-off.json 2> $R/kiln-off.log; echo "kiln bench (direct kernels off) exit $? at $(el)s"
PYTHONUNBUFFERED=1 timeout 200 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
echo "== KILN_SMALL_CONV=0"; grep -E "graphed|fp32" $R/kiln-off.json | head -20
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for k in cifar_cnn_b128_fp32 cnn_b1024_fp32; do
  [ $(el) -gt 480 ] && { echo "no time left for ncu $k"; continue; }
  timeout 60 "$NCU" --clock-control none --cache-control none --metrics gpu__time_duration.sum --launch-skip 2500 --launch-count 250 --csv \
     "$B/run.sh" kiln bench --device cuda --only $k --json > $R/ncu-$k.csv 2> $R/ncu-$k.log; echo "ncu $k exit $?"
  python3 "$B/ncu_step.py" $R/ncu-$k.csv "Kiln $k channels-last" > $R/ncu-$k.txt 2>&1; head -14 $R/ncu-$k.txt; gzip $R/ncu-$k.csv
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
