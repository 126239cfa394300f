#!/usr/bin/env bash
# session 37 call 4: a job of one reducing alone now through NCCL's communicator of one (call 2-3's kiln bench --gpus 1
# ran the job-of-one group, whose mean is a division pass): plain, alone, alone with the high-priority stream, alone
# again; then the eager per-rank profile (its communication summary)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
W=gpt,resnet18
for run in plain alone high alone2 plain2; do
  case $run in
    plain*) timeout 100 "$B/run.sh" kiln bench --data-parallel --cuda-graphs --json --only $W > $R/$run.json 2> $R/$run.log ;;
    alone*) KILN_DP_REDUCE_ALONE=on timeout 100 "$B/run.sh" kiln bench --data-parallel --cuda-graphs --json --only $W > $R/$run.json 2> $R/$run.log ;;
    high) KILN_DP_REDUCE_ALONE=on KILN_DP_COMM_HIGH_PRIORITY=on timeout 100 "$B/run.sh" kiln bench --gpus 1 --cuda-graphs --json --only $W > $R/$run.json 2> $R/$run.log ;;
  esac
  echo "$run exit $? at $(el)s"; tr -d '\n ' < $R/$run.json; echo
done
KILN_DP_REDUCE_ALONE=on timeout 60 "$B/run.sh" kiln bench --gpus 1 --json --only gpt_6L384_T256_b64_bf16 --profile $R/prof > $R/prof.json 2> $R/prof.log; echo "prof exit $? at $(el)s"
for f in $R/prof/*.txt; do echo "== $f"; grep -A3 -i "communication\|all_reduce" "$f" | head -12; done
echo "done at $(el)s"
cd $R && gzip -f prof/*.json 2>/dev/null; tar czf all.tgz --exclude='*.tgz' *
