#!/usr/bin/env bash
# session 34 call 3: v3 (A's fragments split in registers, wgmma reading A from registers and B's split tiles from shared
# memory) beside v2 and v0; then Nsight Compute on gemm_wg32 (v2, v3) and gemm_tc32 at the GPT's 1152 x 16384 x 384
# forward product: what limits them (speed of light, warp stalls, shared memory)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
cd $B/probe
PYTHONUNBUFFERED=1 timeout 100 python3 wg32_probe.py v0=v0.cubin v2=v2.cubin v3=v3.cubin 2>&1 | tee $R/probe.txt; echo "probe exit $? at $(el)s"
for v in ${VARIANTS:-v2 v3}; do
  timeout 150 $NCU --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis_Tables --section ComputeWorkloadAnalysis --section Occupancy --section SchedulerStats \
    -k regex:gemm_wg32_tn --launch-count 1 python3 wg32_probe.py $v=$v.cubin > $R/ncu-$v.txt 2>&1; echo "ncu $v exit $? at $(el)s"
done
timeout 100 $NCU --section SpeedOfLight --section WarpStateStats --section ComputeWorkloadAnalysis --section SchedulerStats \
    -k regex:gemm_tc32_tn --launch-count 1 python3 wg32_probe.py v2=v2.cubin > $R/ncu-tc32.txt 2>&1; echo "ncu tc32 exit $? at $(el)s"
grep -E "Duration|Throughput|Stall|Issue|Warp Cycles|Bank|Pipe|Tensor|Eligible|Active Warps|Issued" $R/ncu-*.txt | head -120
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
