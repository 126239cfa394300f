#!/usr/bin/env bash
# call 3: the backend calls of PyTorch's cuDNN SDPA (forward + backward), causal and not, d 64 and 128
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
for c in "2 2 128 64 1" "2 2 128 64 0" "2 2 128 128 1"; do
  n=$(echo $c | tr ' ' _)
  CUDNN_LOGLEVEL_DBG=3 CUDNN_LOGDEST_DBG=$R/log-$n.txt CUDNN_FRONTEND_LOG_INFO=1 CUDNN_FRONTEND_LOG_FILE=$R/fe-$n.txt python3 $B/cudnn_trace.py $c > $R/out-$n.txt 2>&1
  echo "$n exit $?"; tail -2 $R/out-$n.txt; wc -c $R/log-$n.txt $R/fe-$n.txt
done
cd $R && tar czf traces.tgz log-* fe-* out-* && rm -f log-* fe-* out-*; ls -la
