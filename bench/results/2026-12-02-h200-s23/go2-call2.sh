#!/usr/bin/env bash
# call 2: Nsight Compute on the 128-wide attention kernels (B 8, H 16, T 1024, d 128, bf16, causal)
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
NCU=/usr/local/cuda/bin/ncu
$NCU --target-processes all -k regex:"attention_mma_(fwd|bwd|delta|dq)" --launch-skip 8 --launch-count 4 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
  "$B/run.sh" kiln bench --device cuda --json --only attention_b8_h16_t1024_d128_bf16_fwd_bwd_ms > $R/ncu.txt 2>&1; echo "ncu exit $?"
grep -E "attention_mma|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Block Limit|Compute \(SM\) Throughput|Memory Throughput|Warp Cycles Per Issued|Stall|Shared Memory Configuration|Dynamic Shared|Bank" $R/ncu.txt | head -80
