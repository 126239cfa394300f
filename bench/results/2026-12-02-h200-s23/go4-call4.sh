#!/usr/bin/env bash
# call 4: final d128 code (AttentionGpuTest); ncu of the d 64 GPT-shape attention (fwd/bwd split, stalls)
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
"$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest > $R/att-test.txt 2>&1; echo "test exit $?"
grep -E "tests (successful|failed)|✘|=>" $R/att-test.txt | head -30
/usr/local/cuda/bin/ncu --target-processes all -k regex:"attention_mma_(fwd|bwd|delta|dq)" --launch-skip 8 --launch-count 4 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis_Tables --section InstructionStats \
  "$B/run.sh" kiln bench --device cuda --json --only attention_b64_h6_t256_d64_bf16_fwd_bwd_ms > $R/ncu.txt 2>&1; echo "ncu exit $?"
grep -E "attention_mma|Duration|Registers Per|Achieved Occupancy|Compute \(SM\) Throughput|Warp Cycles Per Issued|Stall|stall|Bank|Executed Instructions  " $R/ncu.txt | head -60
/usr/local/cuda/bin/ncu --target-processes all -k regex:"attention_mma_bwd" --launch-skip 2 --launch-count 1 --section WarpStateStats --section SourceCounters \
  "$B/run.sh" kiln bench --device cuda --json --only attention_b64_h6_t256_d64_bf16_fwd_bwd_ms > $R/ncu-src.txt 2>&1; echo "ncu src exit $?"
sed -n '/Section: Source Counters/,$p' $R/ncu-src.txt | head -60
