#!/usr/bin/env bash
# session 32 call 4: conv_tap_wgrad timed against cuDNN's pick under the timed search (tested; the choices logged), the
# small CNNs and ResNet-18 beside torch.compile (same call), the Fashion-MNIST rows
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 120 "$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest > $R/conv.txt 2>&1; echo "ConvolutionGpuTest exit $? at $(el)s"
grep -E "tests (successful|failed)" $R/conv.txt; grep -A8 "✘" $R/conv.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
W=cnn_b,cifar_cnn_b,resnet18
KILN_LOG_LEVEL=debug timeout 200 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln-debug.log; echo "kiln bench exit $? at $(el)s"
grep conv_tap $R/kiln-debug.log | sort | uniq -c | head -30; grep -v "DEBUG\|cudnn:" $R/kiln-debug.log > $R/kiln.log; gzip $R/kiln-debug.log
PYTHONUNBUFFERED=1 timeout 300 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
if [ $(el) -lt 480 ]; then
  timeout 70 "$B/run.sh" kiln bench --device cuda --only fmnist --cuda-graphs --json --data "$B/fmnist" > $R/fmnist.json 2> $R/fmnist.log; echo "fmnist exit $? at $(el)s"
  grep -E "to92|10ep" $R/fmnist.json; grep to92 $R/fmnist.log
fi
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
