#!/usr/bin/env bash
# session 37 call 6: where a new process's first epoch goes (Java Flight Recorder, profile settings: Java and native
# samples): the CNN to 92% (b1000 bf16) on an empty cache, then README's kiln train (cnn, one epoch) on an empty cache
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" kiln --version > /dev/null 2>&1   # unpacks the runtime outside the recordings
rm -rf /tmp/c6a /tmp/c6b
JAVA_TOOL_OPTIONS="-XX:StartFlightRecording=filename=$R/to92.jfr,settings=profile" KILN_CACHE_DIR=/tmp/c6a KILN_LOG_LEVEL=debug timeout 60 \
  "$B/run.sh" kiln bench --device cuda --only fmnist_cnn_to92_b1000 --cuda-graphs --json --data "$B/fmnist" > $R/to92.json 2> $R/to92.log
echo "to92 exit $? at $(el)s"; grep -v DEBUG $R/to92.log | grep "bench:"
cd $R
JAVA_TOOL_OPTIONS="-XX:StartFlightRecording=filename=$R/train.jfr,settings=profile" KILN_CACHE_DIR=/tmp/c6b timeout 90 \
  "$B/run.sh" kiln train --model cnn --epochs 1 --data "$B/fmnist" --out $R/runs > $R/train.log 2>&1
echo "train exit $? at $(el)s"; grep -E "epoch|training|took|s$" $R/train.log | tail -5
rm -rf $R/runs
ls -la $R
echo "done at $(el)s"
gzip -f *.log; tar czf all.tgz --exclude='*.tgz' *
