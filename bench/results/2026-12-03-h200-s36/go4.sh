#!/usr/bin/env bash
# session 36 call 4: tile kt + 1's A split and both barriers under tile kt's products (A's fragments in two register
# sets), the tile's column halves as two wgmma groups (p1, wg32-p1.diff) or one (p2, wg32-p2.diff), beside l1 (call 3);
# Nsight Compute on p1's plain product; Kiln built with p1: Matmul, Transformer, LM, Recurrent, CublasLtChoices GPU
# tests; GPT/LSTM fp32 beside torch.compile in the same call
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
cd $B/probe; PYTHONUNBUFFERED=1 timeout 120 python3 wg32_probe.py l1=l1.cubin p1=p1.cubin p2=p2.cubin > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"
cut -c1-400 $R/probe.txt
NCU=/usr/local/cuda/bin/ncu
PROBE_SHAPES=tn:1152:16384:384 timeout 60 $NCU --kernel-name regex:gemm_wg32 --launch-skip 1 --launch-count 1 --section SpeedOfLight --section WarpStateStats \
   --section SourceCounters --section ComputeWorkloadAnalysis --section SchedulerStats --section MemoryWorkloadAnalysis -o $R/ncu-p1 python3 wg32_probe.py p1=p1.cubin > $R/ncu-p1.log 2>&1; echo "ncu exit $? at $(el)s"
$NCU -i $R/ncu-p1.ncu-rep --print-details all > $R/ncu-p1.txt 2>&1
$NCU -i $R/ncu-p1.ncu-rep --page source --csv --print-source sass > $R/ncu-p1-sass.csv 2>&1; gzip $R/ncu-p1-sass.csv
grep -E "Duration|Warp Cycles Per Issued|Issue Slots Busy|Pipe Tensor Cycles|Stall" $R/ncu-p1.txt | head -20
cd - >/dev/null
timeout 170 "$B/run.sh" test --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.TransformerGpuTest --select-class dev.kiln.cuda.LanguageModelGpuTest --select-class dev.kiln.cuda.RecurrentGpuTest --select-class dev.kiln.cuda.CublasLtChoicesGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -16
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32
KILN_LOG_LEVEL=debug timeout 90 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln-debug.log; echo "kiln bench exit $? at $(el)s"
grep -E "gemm_wg32 |gemm_tc32 " $R/kiln-debug.log | sed 's/.*kiln: //' | cut -c1-220 | sort | uniq -c | head -30; grep -v "DEBUG\|cudnn:" $R/kiln-debug.log > $R/kiln.log; gzip $R/kiln-debug.log
PYTHONUNBUFFERED=1 timeout 120 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' --exclude='*.ncu-rep' *
