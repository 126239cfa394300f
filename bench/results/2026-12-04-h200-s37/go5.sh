#!/usr/bin/env bash
# session 37 call 5: the final code: the to92 rows' _reached key (the b1000 recipe and its _again, as a new process's
# first work), and the launcher path of a job of one reducing through NCCL with the GPT rows
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 60 "$B/run.sh" kiln bench --device cuda --only fmnist_cnn_to92_b1000 --cuda-graphs --json --data "$B/fmnist" > $R/to92.json 2> $R/to92.log
echo "to92 exit $? at $(el)s"; tr -d '\n ' < $R/to92.json; echo; grep to92 $R/to92.log
KILN_DP_REDUCE_ALONE=on timeout 60 "$B/run.sh" kiln bench --gpus 1 --cuda-graphs --json --only gpt > $R/alone.json 2> $R/alone.log
echo "alone exit $? at $(el)s"; tr -d '\n ' < $R/alone.json; echo
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
