#!/usr/bin/env bash
# session 29 call 2: the ReLU change's GPU tests, then a recipe sweep for the CNN to 92% on Fashion-MNIST through
# kiln train itself (--lr-schedule onecycle, new): each run's metrics.csv gives the training seconds until 92%
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest --select-class dev.kiln.cuda.ReluNaNGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed)|✘" $R/tests.txt | head -20; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>" | head -10
sweep() {  # name precision batch lr epochs schedule
    local d=/tmp/sw/$1; rm -rf $d
    "$B/run.sh" kiln train --model cnn --device cuda --data "$B/fmnist" --precision $2 --batch-size $3 --lr $4 --epochs $5 --lr-schedule $6 --out $d --json > $R/$1.log 2>&1
    python3 - "$1" "$d/metrics.csv" <<'PY' | tee -a $R/sweep.txt
import csv, sys
name, path = sys.argv[1], sys.argv[2]
try:
    rows = list(csv.DictReader(open(path)))
except OSError as e:
    print(name, "no metrics:", e); sys.exit()
t, hit = 0.0, None
for r in rows:
    t += float(r["train_seconds"])
    if hit is None and float(r["test_acc"]) >= 0.92: hit = (int(r["epoch"]), t)
accs = " ".join("%.4f" % float(r["test_acc"]) for r in rows); secs = " ".join("%.3f" % float(r["train_seconds"]) for r in rows)
print(f"{name:28s} to92 {'%.3f s at epoch %d' % (hit[1], hit[0]) if hit else 'not reached':24s} acc [{accs}] s [{secs}]")
PY
}
sweep warm bf16 512 3e-3 1 onecycle
for c in "bf16 256 2e-3 3" "bf16 256 4e-3 3" "bf16 256 3e-3 4" "bf16 512 3e-3 4" "bf16 512 6e-3 4" "bf16 512 4e-3 5" \
         "bf16 1024 4e-3 5" "bf16 1024 8e-3 5" "bf16 1024 6e-3 6" "fp32 512 4e-3 4" "fp32 1024 6e-3 5" "fp32 128 1e-3 7"; do
    set -- $c; s=onecycle; [ "$3" = 1e-3 ] && s=constant
    sweep "$1_b$2_lr$3_e$4_$s" $1 $2 $3 $4 $s
    [ $(( $(date +%s)-T0 )) -gt 500 ] && { echo "stopping the sweep at $(( $(date +%s)-T0 ))s"; break; }
done
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls | head -5
