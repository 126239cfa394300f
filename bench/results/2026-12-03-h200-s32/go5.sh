#!/usr/bin/env bash
# session 32 call 5: the _lanes forward keeping its filter share in registers (Q = 4 / 2 / 1 channels a thread by the
# filter's size) tested and profiled; the small CNNs beside torch.compile (same call) once more
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 120 "$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest > $R/conv.txt 2>&1; echo "ConvolutionGpuTest exit $? at $(el)s"
grep -E "tests (successful|failed)" $R/conv.txt; grep -A8 "✘" $R/conv.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
W=cnn_b,cifar_cnn_b
timeout 120 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln.log; echo "kiln bench exit $? at $(el)s"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for k in cifar_cnn_b128_fp32 cnn_b1024_fp32; do
  timeout 50 "$NCU" --clock-control none --cache-control none --metrics gpu__time_duration.sum --launch-skip 2500 --launch-count 250 --csv \
     "$B/run.sh" kiln bench --device cuda --only $k --json > $R/ncu-$k.csv 2> $R/ncu-$k.log; echo "ncu $k exit $?"
  python3 "$B/ncu_step.py" $R/ncu-$k.csv "Kiln $k channels-last" > $R/ncu-$k.txt 2>&1; head -1 $R/ncu-$k.txt; grep -E "conv_small|conv_tap" $R/ncu-$k.txt; gzip $R/ncu-$k.csv
done
PYTHONUNBUFFERED=1 timeout 200 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
