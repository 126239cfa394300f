#!/usr/bin/env bash
# session 32 call 1: the review mend's kernels (fcefdf7: WARP_STRIDE, the small forward without its 16-byte CL branch)
# and the smaller runtime (add15a0), then the float32 product probe (IEEE / TF32 / 3xTF32 / BF16x9 on GPT's shapes)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 60 "$B/run.sh" kiln devices > $R/devices.txt 2>&1; echo "devices exit $? at $(el)s"; head -5 $R/devices.txt
timeout 300 "$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest --select-class dev.kiln.cuda.NormalizationGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)|✘" $R/tests.txt | head -20
grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>" | head -10
timeout 150 python3 "$B/fp32_gemm_probe.py" 2 > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"; cat $R/probe.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
