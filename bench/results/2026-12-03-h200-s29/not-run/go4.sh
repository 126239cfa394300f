#!/usr/bin/env bash
# session 29 call 4: cuBLASLt's timed choices kept on disk: its GPU test and MatmulGpuTest, then two fresh kiln train
# processes (the second takes the first's choices: its first epoch's debug log says "timed before")
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 60 "$B/run.sh" test --select-class dev.kiln.cuda.CublasLtChoicesGpuTest --select-class dev.kiln.cuda.MatmulGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed|aborted|skipped)|✘" $R/tests.txt | head -12; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>" | head -8
for k in 1 2; do
timeout 25 "$B/run.sh" kiln train --log-level debug --model cnn --device cuda --data "$B/fmnist" --precision bf16 --batch-size 512 --epochs 2 --out /tmp/s$k 2>&1 \
  | python3 -c "import sys,time; t0=time.time(); [print('%8.3f %s' % (time.time()-t0, l.rstrip()), flush=True) for l in sys.stdin]" > $R/train$k.txt
grep -E "epoch 1/|captured" $R/train$k.txt; echo "cuBLASLt lines timed: $(grep -c 'candidates timed' $R/train$k.txt), taken from disk: $(grep -c 'timed before' $R/train$k.txt)"
done
ls /tmp/kiln-cache/ 2>/dev/null | head; echo "done at $(( $(date +%s)-T0 ))s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
