#!/usr/bin/env bash
# session 31 call 3: the _lanes kernels rewritten (o / Q threads a pixel, Q channels each; the bf16 weight-gradient check
# against a float32 reference), kiln bench beside torch.compile (same call), the fmnist rows (b1000 added), a kiln train
# sweep of batch-1000 recipes, the CNN steps profiled
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 90 "$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest > $R/conv.txt 2>&1; echo "ConvolutionGpuTest exit $? at $(el)s"
KILN_SMALL_CONV=all timeout 90 "$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest > $R/conv-all.txt 2>&1; echo "ConvolutionGpuTest (all) exit $? at $(el)s"
for f in conv conv-all; do grep -E "tests (successful|failed)" $R/$f.txt; grep -A8 "✘" $R/$f.txt | grep -E "Exception|expected|Error|=>" | head -6; done
W=cnn_b,cifar_cnn_b
timeout 120 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln.log; echo "kiln bench exit $? at $(el)s"
KILN_SMALL_CONV=all timeout 60 "$B/run.sh" kiln bench --device cuda --only cifar_cnn_b --cuda-graphs --json > $R/kiln-all.json 2> $R/kiln-all.log; echo "kiln bench (all) exit $? at $(el)s"
PYTHONUNBUFFERED=1 timeout 200 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
echo "== KILN_SMALL_CONV=all"; grep graphed $R/kiln-all.json
timeout 60 "$B/run.sh" kiln bench --device cuda --only fmnist --cuda-graphs --json --data "$B/fmnist" > $R/fmnist.json 2> $R/fmnist.log; echo "fmnist exit $? at $(el)s"
grep -E "to92|10ep" $R/fmnist.json; grep to92 $R/fmnist.log
# to-92% recipes through kiln train (bf16, graphed, channels-last; the accuracy after each epoch)
for r in "1000 1.6e-2 6" "1000 2e-2 6" "1000 1.2e-2 7" "1500 2e-2 6" "2000 2.4e-2 7" "1000 2e-2 5"; do
  [ $(el) -gt 430 ] && { echo "no time left for $r"; continue; }
  set -- $r
  timeout 40 "$B/run.sh" kiln train --model cnn --device cuda --data "$B/fmnist" --batch-size $1 --lr $2 --lr-schedule onecycle --epochs $3 \
     --precision bf16 --out /tmp/sweep-$1-$2-$3 > $R/sweep-$1-$2-$3.txt 2>&1
  echo "== b$1 lr $2 $3 epochs: $(grep -oE 'test acc [0-9.]+%' $R/sweep-$1-$2-$3.txt | awk '{print $3}' | tr '\n' ' ')"
done
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for k in cnn_b1024_fp32 cifar_cnn_b128_fp32; do
  [ $(el) -gt 500 ] && { echo "no time left for ncu $k"; continue; }
  timeout 60 "$NCU" --clock-control none --cache-control none --metrics gpu__time_duration.sum --launch-skip 2500 --launch-count 250 --csv \
     "$B/run.sh" kiln bench --device cuda --only $k --json > $R/ncu-$k.csv 2> $R/ncu-$k.log; echo "ncu $k exit $?"
  python3 "$B/ncu_step.py" $R/ncu-$k.csv "Kiln $k channels-last" > $R/ncu-$k.txt 2>&1; head -12 $R/ncu-$k.txt; gzip $R/ncu-$k.csv
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
