#!/usr/bin/env bash
# session 30 call 1: (a) the last session's unrun cuBLASLt choices on disk: its test, MatmulGpuTest, two fresh kiln train
# processes (the second should log "timed before"); (b) the small CNNs at batch 1024 beside torch.compile: Kiln's op
# table and kernels (ncu), PyTorch's kernels eager and compiled
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 90 "$B/run.sh" test --select-class dev.kiln.cuda.CublasLtChoicesGpuTest --select-class dev.kiln.cuda.MatmulGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed|aborted|skipped)|✘" $R/tests.txt | head -12; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>" | head -8
for k in 1 2; do
timeout 30 "$B/run.sh" kiln train --log-level debug --model cnn --device cuda --data "$B/fmnist" --precision bf16 --batch-size 512 --epochs 2 --out /tmp/s$k 2>&1 \
  | python3 -c "import sys,time; t0=time.time(); [print('%8.3f %s' % (time.time()-t0, l.rstrip()), flush=True) for l in sys.stdin]" > $R/train$k.txt
grep -E "epoch 1/|captured" $R/train$k.txt; echo "cuBLASLt lines timed: $(grep -c 'candidates timed' $R/train$k.txt), taken from disk: $(grep -c 'timed before' $R/train$k.txt)"
done
ls -la /tmp/kiln-cache/ 2>/dev/null | head; echo "part a done at $(( $(date +%s)-T0 ))s"
W=cifar_cnn_b1024,cnn_b1024
timeout 150 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json --profile $R/kiln-prof > $R/kiln.json 2> $R/kiln-bench.log; echo "kiln bench exit $? at $(( $(date +%s)-T0 ))s"
PYTHONUNBUFFERED=1 timeout 200 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
PYTHONUNBUFFERED=1 timeout 200 python3 "$B/ref/torch_profile.py" --only cifar_cnn_b1024 --compiled --rows 40 > $R/torch-profile.txt 2>&1; echo "torch profile exit $? at $(( $(date +%s)-T0 ))s"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for k in cifar_cnn_b1024_bf16 cifar_cnn_b1024_fp32; do
  [ $(( $(date +%s)-T0 )) -gt 430 ] && { echo "no time left for ncu $k"; continue; }
  timeout 120 "$NCU" --clock-control none --cache-control none --metrics gpu__time_duration.sum --launch-skip 2500 --launch-count 150 --csv \
     "$B/run.sh" kiln bench --device cuda --only $k --json > $R/ncu-$k.csv 2> $R/ncu-$k.log; echo "ncu $k exit $? at $(( $(date +%s)-T0 ))s"
  python3 "$B/ncu_step.py" $R/ncu-$k.csv "Kiln $k" > $R/ncu-$k.txt 2>&1; head -30 $R/ncu-$k.txt; gzip $R/ncu-$k.csv
done
echo "done at $(( $(date +%s)-T0 ))s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
