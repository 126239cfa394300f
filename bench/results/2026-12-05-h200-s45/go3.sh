#!/usr/bin/env bash
# session 45 call 3: the final code (c0dc91f: the 256-bit weight gradient two positions a step over blocked rows, and
# 4-row tiles for the output channels past whole tiles): the GPU tests whose reference is the CPU convolution, the
# ResNet interop (CPU and CUDA against torchvision) and the CPU convolution tests on these 16 cores; then the image
# models on the 16 cores, this code ("new") and the session's first kiln-core ("start", 02e9d9a) alternating, beside
# torch_cpu_ref.py images
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
mkdir -p /tmp/kiln-interop; python3 "$B/ref/resnet_interop.py" /tmp/kiln-interop > $R/interop.txt 2>&1; echo "resnet_interop exit $?"
KILN_INTEROP_DIR=/tmp/kiln-interop timeout 240 "$B/run.sh" test $(sel dev.kiln.cuda.ConvolutionGpuTest dev.kiln.cuda.AmpGpuTest dev.kiln.cuda.CudaBackendGpuTest dev.kiln.cuda.PoolingGpuTest dev.kiln.cuda.ReluNaNGpuTest dev.kiln.cuda.PredictorGpuTest dev.kiln.cuda.QuantizedGpuTest dev.kiln.cuda.ResNetInteropGpuTest dev.kiln.cpu.Conv3x3Test dev.kiln.cpu.ConvolutionCpuTest dev.kiln.cpu.DirectConvTest dev.kiln.models.ResNetTest dev.kiln.ops.ConvolutionGradTest dev.kiln.infer.PredictorTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|skipped|aborted)" $R/tests.txt; grep -h '^\[interop\]' $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
for round in 1 2; do
  timeout 100 "$B/run.sh" kiln bench --device cpu --only resnet_small_b,cifar_cnn_b128 --json > $R/new$round.json 2> $R/new$round.log; echo "new $round exit $? at $(el)s: $(tr -d '\n ' < $R/new$round.json)"
  timeout 100 "$B/kiln-with.sh" "$B/old/kiln-core-s45.jar" bench --device cpu --only resnet_small_b,cifar_cnn_b128 --json > $R/start$round.json 2> $R/start$round.log; echo "start $round exit $? at $(el)s: $(tr -d '\n ' < $R/start$round.json)"
  PYTHONUNBUFFERED=1 timeout 120 python3 "$B/ref/torch_cpu_ref.py" images --model resnet_small,cifar_cnn > $R/torch$round.txt 2>&1; echo "torch $round exit $? at $(el)s"; grep -E "_s " $R/torch$round.txt
  [ $(( $(date +%s) - T0 )) -gt 420 ] && break
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
