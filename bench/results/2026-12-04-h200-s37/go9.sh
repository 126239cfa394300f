#!/usr/bin/env bash
# session 37 call 9: why the 8192 GEMM rows read 8-15% low in a process that runs the timed search first: the SM clock
# and power every 50 ms while they run (empty cache, then the choices on disk)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
W=gemm_8192_tf32,gemm_8192_bfloat16
rm -rf /tmp/c9
for run in timed ondisk; do
  nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv,noheader -lms 50 > $R/smi-$run.csv 2>&1 &
  P=$!
  KILN_CACHE_DIR=/tmp/c9 KILN_LOG_LEVEL=debug timeout 60 "$B/run.sh" kiln bench --device cuda --only $W --json > $R/$run.json 2> $R/$run.log
  echo "$run exit $? at $(el)s"; grep "bench:" $R/$run.log
  kill $P; sleep 1
  awk -F', ' '{gsub(/ MHz| W/,""); printf "%s/%d/%s ", $2, $3, $5} END {print ""}' $R/smi-$run.csv | cut -c1-3000
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
