#!/usr/bin/env bash
# session 42 call 5: the GPU tests whose reference is the CPU convolution, after Conv3x3 took batches of fewer images
# than threads too (so on these 16 cores the small test batches now meet it), with the CPU convolution tests on the host
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
S=""; for c in ConvolutionGpuTest AmpGpuTest CudaBackendGpuTest PoolingGpuTest ReluNaNGpuTest PredictorGpuTest QuantizedGpuTest; do S="$S --select-class dev.kiln.cuda.$c"; done
timeout 240 "$B/run.sh" test $S --select-class dev.kiln.cpu.Conv3x3Test --select-class dev.kiln.cpu.ConvolutionCpuTest --select-class dev.kiln.cpu.DirectConvTest --select-class dev.kiln.models.ResNetTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"; grep -E "tests (successful|failed|skipped|aborted)" $R/tests.txt; grep -B2 -A8 "✘" $R/tests.txt | head -60
"$B/run.sh" kiln devices 2>&1 | grep -i 'kernel' | cut -c1-300
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
