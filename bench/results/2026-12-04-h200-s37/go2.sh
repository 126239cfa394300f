#!/usr/bin/env bash
# session 37 call 2: kiln.dp.reduce.alone on one H200: the data-parallel GPU tests of one GPU (two ranks over TCP, and a
# job of one reducing through NCCL, eager and graphed), then the data-parallel step's own cost: the same bench rows as
# a plain job of one, as a job of one reducing through NCCL (kiln bench --gpus 1), and through the launcher without it
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 200 "$B/run.sh" test --select-class dev.kiln.cuda.DataParallelOneGpuTest --select-class dev.kiln.cuda.NcclGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)|\[dp\]" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -16
W=gpt,resnet18
for run in plain alone launch alone2; do
  case $run in
    plain) timeout 150 "$B/run.sh" kiln bench --data-parallel --cuda-graphs --json --only $W > $R/$run.json 2> $R/$run.log ;;
    alone*) KILN_DP_REDUCE_ALONE=on timeout 150 "$B/run.sh" kiln bench --gpus 1 --cuda-graphs --json --only $W > $R/$run.json 2> $R/$run.log ;;
    launch) timeout 150 "$B/run.sh" kiln bench --gpus 1 --cuda-graphs --json --only $W > $R/$run.json 2> $R/$run.log ;;
  esac
  echo "$run exit $? at $(el)s"; tr -d '\n ' < $R/$run.json; echo
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
