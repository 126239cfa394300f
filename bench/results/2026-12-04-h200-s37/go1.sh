#!/usr/bin/env bash
# session 37 call 1: where the CNN-to-92% run's first epoch goes on a fresh machine (the timed searches' wall times in
# the debug log), the b1000 recipe alone with and without the timed search, then the whole fmnist rows as before
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
for mode in bench nobench bench2; do
  flag=""; [ $mode = nobench ] && flag=--no-cudnn-benchmark
  [ $mode = bench2 ] || rm -rf /tmp/c-$mode
  C=/tmp/c-$mode; [ $mode = bench2 ] && C=/tmp/c-bench
  KILN_CACHE_DIR=$C KILN_LOG_LEVEL=debug timeout 60 "$B/run.sh" kiln bench --device cuda --only fmnist_cnn_to92_b1000 --cuda-graphs --json \
    --data "$B/fmnist" $flag > $R/to92-$mode.json 2> $R/to92-$mode.log
  echo "to92 $mode exit $? at $(el)s"; grep -v DEBUG $R/to92-$mode.log | grep to92
  grep -E "the search|captured" $R/to92-$mode.log | sed 's/.*DEBUG//' | cut -c1-230
  grep -o "the search [0-9.]* ms" $R/to92-$mode.log | awk '{s+=$3} END {print "searches: " NR ", " s " ms"}'
done
KILN_CACHE_DIR=/tmp/c-full timeout 100 "$B/run.sh" kiln bench --device cuda --only fmnist --cuda-graphs --json --data "$B/fmnist" > $R/fmnist.json 2> $R/fmnist.log
echo "fmnist exit $? at $(el)s"; grep -v DEBUG $R/fmnist.log | grep bench:
echo "done at $(el)s"
cd $R && gzip *.log && tar czf all.tgz --exclude='*.tgz' *
