#!/usr/bin/env bash
# session 36 call 1: gemm_wg32 with tile k + 1's loads, splits and barriers under tile k's products (A's fragments in
# two register sets; v1: each tile's column halves as two wgmma groups, v2: one group) beside session 35's (v0) and
# torch.mm; Nsight Compute's source counters for v0 and v1 on one product; Kiln built with v1: MatmulGpuTest and
# GPT/LSTM fp32 beside torch.compile in the same call
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
cd $B/probe; PYTHONUNBUFFERED=1 timeout 100 python3 wg32_probe.py v0=v0.cubin v1=v1.cubin v2=v2.cubin > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"
cat $R/probe.txt | cut -c1-400
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1); echo "ncu: $NCU"; $NCU --version | tail -1
for v in v0 v1; do
  PROBE_SHAPES=tn:1152:16384:384 PROBE_TIME=0 timeout 60 $NCU --kernel-name regex:gemm_wg32 --launch-count 1 --section SpeedOfLight --section WarpStateStats \
     --section SourceCounters --section ComputeWorkloadAnalysis --section SchedulerStats -o $R/ncu-$v python3 wg32_probe.py $v=$v.cubin > $R/ncu-$v.log 2>&1; echo "ncu $v exit $? at $(el)s"
  $NCU -i $R/ncu-$v.ncu-rep --print-details all > $R/ncu-$v.txt 2>&1
  $NCU -i $R/ncu-$v.ncu-rep --page source --csv --print-source sass > $R/ncu-$v-sass.csv 2>&1 || $NCU -i $R/ncu-$v.ncu-rep --page source --csv > $R/ncu-$v-sass.csv 2>&1
  grep -E "Duration|Warp Cycles Per Issued|Issue Slots Busy|Tensor|stall|Stall" $R/ncu-$v.txt | head -30
done
cd - >/dev/null
timeout 150 "$B/run.sh" test --select-class dev.kiln.cuda.MatmulGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -16
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32
KILN_LOG_LEVEL=debug timeout 90 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln-debug.log; echo "kiln bench exit $? at $(el)s"
grep -E "gemm_wg32 |gemm_tc32 " $R/kiln-debug.log | sed 's/.*kiln: //' | cut -c1-220 | sort | uniq -c | head -30; grep -v "DEBUG\|cudnn:" $R/kiln-debug.log > $R/kiln.log; gzip $R/kiln-debug.log
PYTHONUNBUFFERED=1 timeout 120 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' --exclude='*.ncu-rep' *
