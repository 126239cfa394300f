#!/usr/bin/env bash
# Call 3: Nsight Compute on one radix pass of the 2^24 argsort.
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
echo "ncu: $NCU"
timeout 400 "$NCU" --kernel-name regex:radix_pass --launch-skip 6 --launch-count 1 --set full \
  --target-processes all "$B/run.sh" bench argsort-flat > "$O/ncu-pass.txt" 2>&1
echo "ncu exit $?"
grep -E "Duration|Throughput|Achieved Occupancy|Registers|Warp Cycles Per Issued|Issue Slots Busy|Stall|L1/TEX Hit|Bank|Eligible|One or More|No Eligible|  [A-Z][a-z]+ .*(\%|cycle)" "$O/ncu-pass.txt" | head -80
