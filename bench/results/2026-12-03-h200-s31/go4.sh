#!/usr/bin/env bash
# session 31 call 4: the whole GPU suite on the final code (the _lanes kernels, the finish kernels' warp sums), then
# the fmnist rows with the b1000 recipe run twice (_again: kernel choices already timed), the MNIST CNN beside torch.compile
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 60 "$B/run.sh" kiln bench --device cuda --only fmnist --cuda-graphs --json --data "$B/fmnist" > $R/fmnist.json 2> $R/fmnist.log; echo "fmnist exit $? at $(el)s"
grep -E "to92|10ep" $R/fmnist.json; grep to92 $R/fmnist.log
NCCL_NVLS_ENABLE=0 timeout 400 "$B/run.sh" test --select-package dev.kiln.cuda --select-class dev.kiln.train.TrainerGraphGpuTest > $R/suite.txt 2>&1; echo "suite exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)|✘" $R/suite.txt | head -30
grep -A8 "✘" $R/suite.txt | grep -E "Exception|expected|Error|=>" | head -10
# a second same-run sample of the small CNNs against torch.compile, if the time allows
if [ $(el) -lt 370 ]; then
  timeout 25 "$B/run.sh" kiln bench --device cuda --only cnn_b --cuda-graphs --json > $R/kiln.json 2> $R/kiln.log; echo "kiln bench exit $? at $(el)s"
  PYTHONUNBUFFERED=1 timeout 120 python3 "$B/ref/torch_ref.py" --only cnn_b --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
  python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
fi
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
