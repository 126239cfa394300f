#!/usr/bin/env bash
# session 26 call 4: the closing review's refactor of the column reductions' launch (chunk count passed, not recomputed)
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.ReductionsGpuTest --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.ConvolutionGpuTest \
  --select-class dev.kiln.cuda.TransformerGpuTest > $R/tests.txt 2>&1; echo "tests exit $?"
grep -E "tests (successful|failed)|✘" $R/tests.txt | head
