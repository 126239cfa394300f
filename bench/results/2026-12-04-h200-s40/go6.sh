#!/usr/bin/env bash
# session 40 call 6: ConvolutionGpuTest with its bfloat16 residual outputs and weight gradients held to their rounding
# bound (4 unit roundoffs of Σ|terms|, the float32 reference), three runs on fresh random inputs; AttentionGpuTest once more
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
for r in 1 2 3; do
  timeout 100 "$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest > $R/conv$r.txt 2>&1; echo "conv run $r exit $? at $(el)s"
  grep -E "tests (successful|failed)" $R/conv$r.txt; grep -A8 "✘" $R/conv$r.txt | grep -E "Exception|expected|Error|=>|✘" | head -8
done
timeout 100 "$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest > $R/attn.txt 2>&1; echo "attention exit $? at $(el)s"
grep -E "tests (successful|failed)" $R/attn.txt; grep -A8 "✘" $R/attn.txt | grep -E "Exception|expected|Error|=>|✘" | head -8
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
