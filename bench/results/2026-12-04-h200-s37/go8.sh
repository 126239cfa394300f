#!/usr/bin/env bash
# session 37 call 8: the 8192 bf16 and tf32 GEMM rows at 0.88x / 0.85x PyTorch in call 7 (1.01x / 0.95x in session
# 29): the timed search's picks in the debug log, the same rows without the timed search, and PyTorch's figure between
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv,noheader | tee $R/gpu.txt
W=gemm_8192_tf32,gemm_8192_bfloat16
for run in timed heur timed2; do
  flag=""; [ $run = heur ] && flag=--no-cudnn-benchmark
  KILN_LOG_LEVEL=debug timeout 60 "$B/run.sh" kiln bench --device cuda --only $W --json $flag > $R/$run.json 2> $R/$run.log
  echo "$run exit $? at $(el)s"; grep "bench:" $R/$run.log; grep -E "cuBLASLt|cublaslt|gemm_wg32|gemm_tc32" $R/$run.log | sed 's/.*DEBUG//' | cut -c1-260
  [ $run = heur ] && { PYTHONUNBUFFERED=1 timeout 60 python3 "$B/ref/torch_ref.py" --only gemm_8192 > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"; tr -d '\n ' < $R/torch.json; echo; }
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
