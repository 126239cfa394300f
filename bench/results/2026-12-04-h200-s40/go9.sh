#!/usr/bin/env bash
# session 40 call 8 (and 9, with the test's layers 8192 wide): call 7's one failure, PipelineGpuTest's overlap check (0 of 20 copies beside compute), three runs
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
for r in 1 2 3; do
  timeout 60 "$B/run.sh" test --select-class dev.kiln.cuda.PipelineGpuTest > $R/pipeline$r.txt 2>&1; echo "pipeline run $r exit $? at $(el)s"
  grep -E "tests (successful|failed)" $R/pipeline$r.txt; grep -a "copies overlap compute" $R/pipeline$r.txt | head -2
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
